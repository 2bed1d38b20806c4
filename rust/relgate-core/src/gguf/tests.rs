//! Unit tests of the GGUF parser: valid layouts as GGUFWriter writes them, and a hostile
//! corpus where every case names the rule it must break.

use super::*;

#[path = "../../tests/attest_support/gguf.rs"]
mod w;

use w::{small_model, Gguf, Tensor, Val};

fn parse_ok(bytes: &[u8]) -> Header {
    parse(Path::new("t.gguf"), bytes).unwrap()
}

fn rule_of(bytes: &[u8]) -> &'static str {
    match parse(Path::new("t.gguf"), bytes) {
        Err(CoreError::Integrity { rule, .. }) => rule,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[test]
fn parses_what_the_writer_lays_out() {
    let g = Gguf::new(small_model());
    let (bytes, layout) = g.build();
    let h = parse_ok(&bytes);
    assert_eq!(h.version, 3);
    assert_eq!(h.alignment, 32);
    assert_eq!(h.kv, layout.kv_start..layout.kv_end);
    assert_eq!(h.header_end, layout.header_end);
    assert_eq!(h.data_start, layout.data_start);
    assert_eq!(h.split, None);
    assert_eq!(h.tensors.len(), 6);
    for (t, off) in g.tensors.iter().zip(&layout.offsets) {
        let got = h
            .tensors
            .iter()
            .find(|x| x.name.as_bytes() == t.name)
            .unwrap();
        assert_eq!(got.ggml_type.id, t.ggml_type);
        assert_eq!(got.shape, t.dims);
        assert_eq!(h.data_start + got.begin, *off);
        assert_eq!(got.len(), t.data.len() as u64);
    }
    // Sorted by position.
    assert!(h.tensors.windows(2).all(|p| p[0].end <= p[1].begin));
}

#[test]
fn version_2_other_alignments_and_no_tensors() {
    let mut g = Gguf::new(small_model());
    g.version = 2;
    g.alignment = 64;
    assert_eq!(parse_ok(&g.bytes()).alignment, 64);
    g.alignment = 1;
    assert_eq!(parse_ok(&g.bytes()).tensors.len(), 6);
    g.alignment = 32;
    g.alignment_kv = true;
    assert_eq!(parse_ok(&g.bytes()).alignment, 32);
    let empty = Gguf::new(Vec::new());
    let h = parse_ok(&empty.bytes());
    assert!(h.tensors.is_empty());
    // llama.cpp's reader does not pad a header without tensors; both forms are valid.
    let mut unpadded = empty.bytes();
    unpadded.truncate(h.header_end as usize);
    assert!(parse_ok(&unpadded).tensors.is_empty());
}

#[test]
fn metadata_of_every_type_and_nested_arrays_are_skipped() {
    let g = Gguf::new(small_model())
        .kv("a.u8", Val::U8(1))
        .kv("a.i8", Val::I8(-1))
        .kv("a.u16", Val::U16(2))
        .kv("a.i16", Val::I16(-2))
        .kv("a.u32", Val::U32(3))
        .kv("a.i32", Val::I32(-3))
        .kv("a.f32", Val::F32(0.5))
        .kv("a.bool", Val::Bool(true))
        .kv("a.u64", Val::U64(4))
        .kv("a.i64", Val::I64(-4))
        .kv("a.f64", Val::F64(0.25))
        .kv(
            "a.tokens",
            Val::Arr(8, vec![Val::str("<s>"), Val::str(""), Val::str("\u{e9}")]),
        )
        .kv("a.scores", Val::Arr(6, vec![Val::F32(0.0); 5]))
        .kv("a.empty", Val::Arr(8, vec![]))
        .kv(
            "a.nested",
            Val::Arr(
                9,
                vec![
                    Val::Arr(4, vec![Val::U32(1), Val::U32(2)]),
                    Val::Arr(9, vec![Val::Arr(8, vec![Val::str("x")])]),
                ],
            ),
        )
        .kv("split.tensors.count", Val::I32(6));
    assert_eq!(parse_ok(&g.bytes()).tensors.len(), 6);
}

#[test]
fn split_keys_are_read() {
    let g = Gguf::new(small_model())
        .kv("split.no", Val::U16(1))
        .kv("split.count", Val::U16(3));
    assert_eq!(parse_ok(&g.bytes()).split, Some(Split { no: 1, count: 3 }));
}

#[test]
fn names_of_64_bytes_are_valid() {
    let name = "n".repeat(64);
    let g = Gguf::new(vec![Tensor::new(&name, "F32", &[1], 1)]);
    assert_eq!(parse_ok(&g.bytes()).tensors[0].name, name);
}

fn with_tensor(f: impl FnOnce(&mut Tensor)) -> Vec<u8> {
    let mut g = Gguf::new(small_model());
    f(&mut g.tensors[1]);
    g.bytes()
}

fn with(f: impl FnOnce(&mut Gguf)) -> Vec<u8> {
    let mut g = Gguf::new(small_model());
    f(&mut g);
    g.bytes()
}

fn patch(mut b: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    b[at..at + bytes.len()].copy_from_slice(bytes);
    b
}

/// The hostile corpus: (case, bytes, rule). Each case changes one thing of a valid file.
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let valid = Gguf::new(small_model()).bytes();
    let (_, layout) = Gguf::new(small_model()).build();
    let t1 = layout.offsets[1] as usize;
    let deep = (0..6).fold(Val::Arr(4, vec![]), |inner, _| Val::Arr(9, vec![inner]));
    vec![
        ("empty file", vec![], rules::TRUNCATED),
        ("three bytes", b"GGU".to_vec(), rules::TRUNCATED),
        ("bad magic", patch(valid.clone(), 0, b"GGML"), rules::MAGIC),
        (
            "safetensors bytes",
            {
                let mut b = 2u64.to_le_bytes().to_vec();
                b.extend_from_slice(b"{}");
                b
            },
            rules::MAGIC,
        ),
        ("truncated version", valid[..6].to_vec(), rules::TRUNCATED),
        (
            "version 1",
            patch(valid.clone(), 4, &1u32.to_le_bytes()),
            rules::V1,
        ),
        (
            "version 0",
            patch(valid.clone(), 4, &0u32.to_le_bytes()),
            rules::VERSION,
        ),
        (
            "version 4",
            patch(valid.clone(), 4, &4u32.to_le_bytes()),
            rules::VERSION,
        ),
        (
            "big-endian",
            patch(valid.clone(), 4, &3u32.to_be_bytes()),
            rules::BIG_ENDIAN,
        ),
        (
            "truncated tensor count",
            valid[..12].to_vec(),
            rules::TRUNCATED,
        ),
        ("truncated KV count", valid[..20].to_vec(), rules::TRUNCATED),
        (
            "huge tensor count",
            with(|g| g.tensor_count = Some(u64::MAX)),
            rules::TENSOR_COUNT,
        ),
        (
            "tensor count over the cap",
            with(|g| g.tensor_count = Some(MAX_TENSORS + 1)),
            rules::TENSOR_COUNT,
        ),
        (
            "tensor count over the file",
            with(|g| g.tensor_count = Some(1000)),
            rules::TENSOR_COUNT,
        ),
        (
            "huge KV count",
            with(|g| g.kv_count = Some(u64::MAX)),
            rules::KV_COUNT,
        ),
        (
            "KV count over the file",
            with(|g| g.kv_count = Some(5000)),
            rules::KV_COUNT,
        ),
        (
            "huge key length",
            patch(valid.clone(), 24, &u64::MAX.to_le_bytes()),
            rules::STRING_LENGTH,
        ),
        (
            "huge string value",
            with(|g| g.kvs[0].1 = Val::Raw(8, u64::MAX.to_le_bytes().to_vec())),
            rules::STRING_LENGTH,
        ),
        (
            "string value past the end",
            with(|g| g.kvs[1].1 = Val::Raw(8, 1_000_000u64.to_le_bytes().to_vec())),
            rules::STRING_LENGTH,
        ),
        (
            "huge array",
            with(|g| {
                let mut p = 6u32.to_le_bytes().to_vec();
                p.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
                g.kvs[0].1 = Val::Raw(9, p);
            }),
            rules::ARRAY_LENGTH,
        ),
        (
            "array of strings past the end",
            with(|g| {
                let mut p = 8u32.to_le_bytes().to_vec();
                p.extend_from_slice(&100_000u64.to_le_bytes());
                g.kvs[0].1 = Val::Raw(9, p);
            }),
            rules::ARRAY_LENGTH,
        ),
        (
            "unknown value type",
            with(|g| g.kvs[0].1 = Val::Raw(13, vec![0; 8])),
            rules::VALUE_TYPE,
        ),
        (
            "unknown array element type",
            with(|g| g.kvs[0].1 = Val::Arr(99, vec![])),
            rules::VALUE_TYPE,
        ),
        (
            "array depth bomb",
            with(|g| g.kvs.push((b"x.deep".to_vec(), deep))),
            rules::ARRAY_DEPTH,
        ),
        ("empty key", with(|g| g.kvs[0].0 = Vec::new()), rules::KEY),
        (
            "non-UTF-8 key",
            with(|g| g.kvs[0].0 = b"general.\xff".to_vec()),
            rules::KEY,
        ),
        (
            "duplicate key",
            with(|g| g.kvs[1].0 = g.kvs[0].0.clone()),
            rules::DUPLICATE_KEY,
        ),
        (
            "alignment 0",
            with(|g| g.kvs.push((b"general.alignment".to_vec(), Val::U32(0)))),
            rules::ALIGNMENT,
        ),
        (
            "alignment 3",
            with(|g| g.kvs.push((b"general.alignment".to_vec(), Val::U32(3)))),
            rules::ALIGNMENT,
        ),
        (
            "alignment as u64",
            with(|g| g.kvs.push((b"general.alignment".to_vec(), Val::U64(32)))),
            rules::ALIGNMENT,
        ),
        (
            "split.no >= split.count",
            with(|g| {
                g.kvs.push((b"split.no".to_vec(), Val::U16(2)));
                g.kvs.push((b"split.count".to_vec(), Val::U16(2)));
            }),
            rules::SPLIT,
        ),
        (
            "split.count without split.no",
            with(|g| g.kvs.push((b"split.count".to_vec(), Val::U16(2)))),
            rules::SPLIT,
        ),
        (
            "split.no as u32",
            with(|g| g.kvs.push((b"split.no".to_vec(), Val::U32(0)))),
            rules::SPLIT,
        ),
        (
            "empty tensor name",
            with_tensor(|t| t.name = Vec::new()),
            rules::TENSOR_NAME,
        ),
        (
            "65-byte tensor name",
            with_tensor(|t| t.name = vec![b'n'; 65]),
            rules::TENSOR_NAME,
        ),
        (
            "non-UTF-8 tensor name",
            with_tensor(|t| t.name = b"blk.\xc3".to_vec()),
            rules::TENSOR_NAME,
        ),
        (
            "NUL in a tensor name",
            with_tensor(|t| t.name = b"a\0b".to_vec()),
            rules::TENSOR_NAME,
        ),
        (
            "huge tensor name length",
            with_tensor(|t| t.name = vec![b'n'; 1 << 20]),
            rules::TENSOR_NAME,
        ),
        (
            "duplicate tensor name",
            with(|g| g.tensors[3].name = g.tensors[0].name.clone()),
            rules::DUPLICATE_NAME,
        ),
        ("n_dims 0", with_tensor(|t| t.dims.clear()), rules::N_DIMS),
        (
            "n_dims 5",
            with_tensor(|t| t.dims = vec![1, 1, 1, 1, 64]),
            rules::N_DIMS,
        ),
        ("dim 0", with_tensor(|t| t.dims = vec![64, 0]), rules::DIM),
        (
            "dim over 2^53",
            with_tensor(|t| t.dims = vec![1 << 53]),
            rules::DIM,
        ),
        (
            "deprecated type 4",
            with_tensor(|t| t.ggml_type = 4),
            rules::UNKNOWN_TYPE,
        ),
        (
            "removed type 33",
            with_tensor(|t| t.ggml_type = 33),
            rules::UNKNOWN_TYPE,
        ),
        (
            "unknown type",
            with_tensor(|t| t.ggml_type = 9999),
            rules::UNKNOWN_TYPE,
        ),
        (
            "ne[0] not a block multiple",
            with(|g| g.tensors[0].dims = vec![48, 10]),
            rules::BLOCK_SIZE,
        ),
        (
            "element count overflow",
            with_tensor(|t| t.dims = vec![1 << 32, 1 << 32, 4]),
            rules::SHAPE_OVERFLOW,
        ),
        (
            "element count of 2^63",
            with_tensor(|t| t.dims = vec![1 << 31, 1 << 31, 2]),
            rules::SHAPE_OVERFLOW,
        ),
        (
            "byte size overflow",
            with(|g| {
                g.tensors[1].dims = vec![1 << 30, 1 << 30, 4];
                g.tensors[1].ggml_type = 28; // F64: 2^62 elements x 8 bytes
            }),
            rules::SHAPE_OVERFLOW,
        ),
        (
            "misaligned offset",
            with_tensor(|t| t.offset = Some(t.data.len() as u64 + 4)),
            rules::OFFSET_ALIGNMENT,
        ),
        (
            "data past EOF",
            {
                let mut b = valid.clone();
                b.truncate(b.len() - 40);
                b
            },
            rules::OUT_OF_BOUNDS,
        ),
        (
            "offset near 2^64",
            with_tensor(|t| t.offset = Some(u64::MAX - 31)),
            rules::OUT_OF_BOUNDS,
        ),
        (
            "shape larger than the data",
            with(|g| g.tensors[5].dims = vec![7, 3000]),
            rules::OUT_OF_BOUNDS,
        ),
        (
            "overlap",
            with(|g| g.tensors[1].offset = Some(0)),
            rules::OVERLAP,
        ),
        (
            "gap between tensors",
            with(|g| {
                let off = (g.tensors[0].data.len() as u64).div_ceil(32) * 32 + 32;
                g.tensors[1].offset = Some(off);
            }),
            rules::GAP,
        ),
        (
            "gap before the first tensor",
            with(|g| g.tensors[0].offset = Some(32)),
            rules::GAP,
        ),
        (
            "non-zero padding between tensors",
            patch(valid.clone(), t1 - 1, &[1]),
            rules::PADDING,
        ),
        (
            "non-zero padding after the header",
            patch(valid.clone(), layout.data_start as usize - 1, &[0x80]),
            rules::PADDING,
        ),
        (
            "non-zero padding after the last tensor",
            patch(valid.clone(), valid.len() - 1, &[7]),
            rules::PADDING,
        ),
        (
            "non-zero padding everywhere",
            with(|g| g.pad = 0xaa),
            rules::PADDING,
        ),
        (
            "trailing bytes",
            with(|g| g.trailing = vec![0; 32]),
            rules::TRAILING_BYTES,
        ),
    ]
}

#[test]
fn every_hostile_case_breaks_its_rule() {
    let cases = corpus();
    assert!(cases.len() >= 30);
    let mut seen = HashSet::new();
    for (case, bytes, want) in cases {
        assert_eq!(rule_of(&bytes), want, "{case}");
        seen.insert(want);
    }
    // Every rule of the parser has a case (HEADER_LENGTH has its own test below).
    let all = [
        rules::MAGIC,
        rules::VERSION,
        rules::V1,
        rules::BIG_ENDIAN,
        rules::TRUNCATED,
        rules::TENSOR_COUNT,
        rules::KV_COUNT,
        rules::STRING_LENGTH,
        rules::ARRAY_LENGTH,
        rules::VALUE_TYPE,
        rules::ARRAY_DEPTH,
        rules::KEY,
        rules::DUPLICATE_KEY,
        rules::ALIGNMENT,
        rules::SPLIT,
        rules::TENSOR_NAME,
        rules::DUPLICATE_NAME,
        rules::N_DIMS,
        rules::DIM,
        rules::UNKNOWN_TYPE,
        rules::BLOCK_SIZE,
        rules::SHAPE_OVERFLOW,
        rules::OFFSET_ALIGNMENT,
        rules::OUT_OF_BOUNDS,
        rules::OVERLAP,
        rules::GAP,
        rules::TRAILING_BYTES,
        rules::PADDING,
    ];
    for r in all {
        assert!(seen.contains(r), "no case for {r}");
    }
}

#[test]
fn a_header_past_the_size_cap_is_refused_without_reading_it() {
    // A key claiming 300 MB in a file that has them: the cap, not the file, stops it.
    let mut g = Gguf::new(Vec::new());
    g.kvs = vec![(
        b"k".to_vec(),
        Val::Raw(8, (300u64 << 20).to_le_bytes().to_vec()),
    )];
    let mut bytes = g.bytes();
    bytes.resize(bytes.len() + (300 << 20), 0);
    assert_eq!(rule_of(&bytes), rules::HEADER_LENGTH);
}

#[test]
fn truncation_at_every_byte_is_refused() {
    let bytes = Gguf::new(small_model()).bytes();
    let h = parse_ok(&bytes);
    let header_rules = [
        rules::TRUNCATED,
        rules::STRING_LENGTH,
        rules::ARRAY_LENGTH,
        rules::TENSOR_COUNT,
        rules::KV_COUNT,
    ];
    // The last tensor's padding may be cut: what is left is still a valid file.
    let last_end = h.data_start + h.tensors.last().unwrap().end;
    for len in 0..bytes.len() {
        let got = parse(Path::new("t.gguf"), &bytes[..len]);
        match got {
            Err(CoreError::Integrity { rule, .. }) if (len as u64) < h.header_end => {
                assert!(header_rules.contains(&rule), "len {len}: {rule}")
            }
            Err(CoreError::Integrity { rule, .. }) => {
                assert_eq!(rule, rules::OUT_OF_BOUNDS, "len {len}")
            }
            Ok(_) => assert!(len as u64 >= last_end, "len {len} accepted"),
            Err(e) => panic!("len {len}: {e}"),
        }
    }
}
