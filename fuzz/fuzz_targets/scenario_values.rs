#![no_main]
// See firedrill_fuzz::scenario_values for what this target runs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firedrill_fuzz::scenario_values(data));
