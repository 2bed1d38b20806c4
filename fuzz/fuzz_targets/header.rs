//! The safetensors header parser on arbitrary bytes: it must never panic, hang or allocate
//! by the file's claims, and whatever it accepts must tile the data section exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = relgate_core::safetensors::parse(std::path::Path::new("fuzz"), data) {
        let data_len = data.len() as u64 - h.data_start();
        assert_eq!(h.tensors.iter().map(|t| t.len()).sum::<u64>(), data_len);
        for t in &h.tensors {
            assert!(t.end <= data_len && t.begin <= t.end);
        }
    }
});
