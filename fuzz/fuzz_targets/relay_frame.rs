#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| noom_fuzz::relay_frame(data));
