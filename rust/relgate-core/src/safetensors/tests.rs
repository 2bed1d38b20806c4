//! Unit tests of the safetensors header parser (split out to keep the parser file short).

use super::*;

fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header.as_bytes());
    f.extend_from_slice(data);
    f
}

fn rule_of(bytes: &[u8]) -> &'static str {
    match parse(Path::new("t.safetensors"), bytes) {
        Err(CoreError::Integrity { rule, .. }) => rule,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[test]
fn parses_a_valid_header() {
    let h = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
                "a":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]},
                "__metadata__":{"format":"pt"}}  "#;
    let parsed = parse(Path::new("x"), &file(h, &[0; 12])).unwrap();
    let names: Vec<_> = parsed.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(parsed.tensors[1].dtype, Dtype::F32);
    assert_eq!(parsed.metadata, vec![("format".into(), "pt".into())]);
    assert_eq!(parsed.data_start(), 8 + h.len() as u64);
}

#[test]
fn empty_header_with_no_data_is_valid() {
    assert!(parse(Path::new("x"), &file("{}", &[]))
        .unwrap()
        .tensors
        .is_empty());
}

#[test]
fn sub_byte_dtypes_use_bit_sizes() {
    let ok = r#"{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]},
                 "b":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[2,5]}}"#;
    assert_eq!(
        parse(Path::new("x"), &file(ok, &[0; 5]))
            .unwrap()
            .tensors
            .len(),
        2
    );
    let odd = r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
    assert_eq!(rule_of(&file(odd, &[0; 2])), rules::SUB_BYTE_ALIGNMENT);
}

#[test]
fn each_rule_fires() {
    let t = |entry: &str| format!(r#"{{"a":{entry}}}"#);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 2, 3], rules::FILE_TOO_SMALL),
        (u64::MAX.to_le_bytes().to_vec(), rules::HEADER_LENGTH),
        (
            {
                let mut f = 100u64.to_le_bytes().to_vec();
                f.extend_from_slice(b"{}");
                f
            },
            rules::HEADER_LENGTH,
        ),
        (
            {
                let mut f = 3u64.to_le_bytes().to_vec();
                f.extend_from_slice(b"{\"\xff");
                f
            },
            rules::HEADER_UTF8,
        ),
        (file("[1,2]", &[]), rules::HEADER_NOT_OBJECT),
        (file("{\"a\":", &[]), rules::HEADER_JSON),
        (
            file(&t(r#"{"dtype":"F32","shape":[1]}"#), &[0; 4]),
            rules::HEADER_ENTRY,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}"#),
                &[0; 4],
            ),
            rules::HEADER_ENTRY,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}"#),
                &[0; 4],
            ),
            rules::HEADER_ENTRY,
        ),
        (file(r#"{"__metadata__":{"a":1}}"#, &[]), rules::METADATA),
        (
            file(
                &t(r#"{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}"#),
                &[0; 4],
            ),
            rules::UNKNOWN_DTYPE,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}"#),
                &[0; 4],
            ),
            rules::SHAPE_OVERFLOW,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[0,9007199254740992],"data_offsets":[0,0]}"#),
                &[],
            ),
            rules::SHAPE_OVERFLOW,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[2],"data_offsets":[0,4]}"#),
                &[0; 4],
            ),
            rules::SIZE_MISMATCH,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[1],"data_offsets":[4,0]}"#),
                &[0; 4],
            ),
            rules::OFFSETS_ORDER,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#),
                &[0; 4],
            ),
            rules::OFFSETS_OUT_OF_BOUNDS,
        ),
        (
            file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                &[0; 6],
            ),
            rules::OVERLAP,
        ),
        (
            file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[5,9]}}"#,
                &[0; 9],
            ),
            rules::GAP,
        ),
        (
            file(
                &t(r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#),
                &[0; 5],
            ),
            rules::TRAILING_BYTES,
        ),
        (
            file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            rules::DUPLICATE_NAME,
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            rule_of(&bytes),
            want,
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn dtype_names_round_trip() {
    for d in Dtype::ALL {
        assert_eq!(Dtype::from_name(d.name()), Some(d));
    }
}
