#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lvs::fuzzing::summary_ethernet(data));
