#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lvs::fuzzing::director(data));
