#![no_main]
// See firedrill_fuzz::logql for what this target runs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firedrill_fuzz::logql(data));
