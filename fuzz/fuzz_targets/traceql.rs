#![no_main]
// See firedrill_fuzz::traceql for what this target runs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firedrill_fuzz::traceql(data));
