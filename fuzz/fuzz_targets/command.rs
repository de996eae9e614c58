#![no_main]
// See firedrill_fuzz::command for what this target runs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firedrill_fuzz::command(data));
