//! The GGUF header parser on arbitrary bytes: it must never panic, hang or allocate by the
//! file's claims, and whatever it accepts must be fully explained: tensors inside the data
//! section, aligned, not overlapping, with less than one alignment of (zero) padding left.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relgate_core::gguf;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = gguf::parse(std::path::Path::new("fuzz"), data) {
        let file_len = data.len() as u64;
        assert!(h.header_end <= h.data_start && h.kv.end <= h.header_end);
        assert!(h.alignment.is_power_of_two());
        let data_len = file_len.saturating_sub(h.data_start);
        let mut end = 0;
        for t in &h.tensors {
            assert!(t.begin >= end && t.begin < t.end && t.end <= data_len);
            assert!(t.begin % h.alignment == 0);
            assert!(!t.name.is_empty() && t.name.len() <= gguf::MAX_NAME_LEN);
            assert!((1..=4).contains(&t.shape.len()));
            end = t.end;
        }
        assert!(data_len - end < h.alignment);
        let padding = &data[(h.data_start + end).min(file_len) as usize..];
        assert!(padding.iter().all(|&b| b == 0));
    }
});
