//! Reference vectors: BLAKE3's official test vectors (input byte i is i % 251) through the
//! attestation's data hash, and a pinned root for a fixed tiny checkpoint so the scheme
//! cannot drift silently.

mod attest_support;

use attest_support::{reference_root, write, T};
use relgate_core::attest::{self, Options};

fn vector_input(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn blake3_official_vectors_as_tensor_data() {
    // From BLAKE3's test_vectors.json ("hash", first 32 bytes).
    let vectors = [
        (
            0,
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ),
        (
            1,
            "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
        ),
        (
            1023,
            "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
        ),
        (
            1024,
            "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
        ),
        (
            1025,
            "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
        ),
        (
            102400,
            "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let tensors: Vec<T> = vectors
        .iter()
        .map(|(n, _)| T {
            name: format!("v{n:06}"),
            dtype: "U8",
            shape: vec![*n as u64],
            data: vector_input(*n),
        })
        .collect();
    let path = dir.path().join("v.safetensors");
    write(&path, &tensors);
    let opts = Options {
        file_digests: true,
        ..Options::default()
    };
    let att = attest::attest(&path, &opts).unwrap();
    for ((_, want), t) in vectors.iter().zip(&att.tensors) {
        assert_eq!(hex::encode(t.data_blake3.unwrap()), *want, "{}", t.name);
    }
    // Off by default: it costs a second hash of every byte.
    assert_eq!(
        attest::attest(&path, &Options::default()).unwrap().files[0].blake3,
        None
    );
    // The whole-file digest is plain BLAKE3 of the file (what b3sum prints).
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        att.files[0].blake3.unwrap(),
        *blake3::hash(&bytes).as_bytes()
    );
}

#[test]
fn large_tensors_hashed_in_parallel_match_plain_blake3() {
    // Above the threshold where BLAKE3's multi-threaded update is used.
    let data = vector_input(5 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    let t = T {
        name: "big".into(),
        dtype: "U8",
        shape: vec![data.len() as u64],
        data,
    };
    write(&path, std::slice::from_ref(&t));
    let att = attest::attest(&path, &Options::default()).unwrap();
    assert_eq!(
        att.tensors[0].data_blake3.unwrap(),
        *blake3::hash(&t.data).as_bytes()
    );
    assert_eq!(hex::encode(att.root.unwrap()), reference_root(&[t]));
}

#[test]
fn file_digests_read_in_the_same_pass_change_no_tensor_digest() {
    // Tensors that start, end and span the 1 MiB blocks of the one-pass hashing, and
    // empty ones, including one at the very end of the file.
    const BLOCK: usize = 1 << 20;
    let sizes = [0, 1, BLOCK - 9, BLOCK, BLOCK + 1, 3 * BLOCK + 7, 5, 0];
    let tensors: Vec<T> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| T {
            name: format!("t{i}"),
            dtype: "U8",
            shape: vec![n as u64],
            data: vector_input(n + i)[i..].to_vec(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.safetensors");
    write(&path, &tensors);
    let plain = attest::attest(&path, &Options::default()).unwrap();
    let opts = Options {
        file_digests: true,
        ..Options::default()
    };
    let both = attest::attest(&path, &opts).unwrap();
    assert_eq!(both.tensors, plain.tensors);
    assert_eq!(hex::encode(both.root.unwrap()), reference_root(&tensors));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        both.files[0].blake3.unwrap(),
        *blake3::hash(&bytes).as_bytes()
    );
}

#[test]
fn pinned_root_of_a_tiny_checkpoint() {
    let tensors = vec![
        T {
            name: "b".into(),
            dtype: "F32",
            shape: vec![2],
            data: vec![0, 0, 128, 63, 0, 0, 0, 64],
        },
        T {
            name: "a".into(),
            dtype: "U8",
            shape: vec![1, 3],
            data: vec![1, 2, 3],
        },
        T {
            name: "empty".into(),
            dtype: "F16",
            shape: vec![0],
            data: vec![],
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    write(&path, &tensors);
    let att = attest::attest(&path, &Options::default()).unwrap();
    let root = hex::encode(att.root.unwrap());
    assert_eq!(root, reference_root(&tensors));
    assert_eq!(root, PINNED_TINY_ROOT);
    // No tensors at all: the empty-tree hash, BLAKE3("").
    let empty = dir.path().join("empty.safetensors");
    write(&empty, &[]);
    let att = attest::attest(&empty, &Options::default()).unwrap();
    assert_eq!(
        hex::encode(att.root.unwrap()),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
}

// Cross-checked with an independent Python computation (blake3-py + rfc8785).
const PINNED_TINY_ROOT: &str = "a3703dab1762fc12394895e1f7a0283698fed5be8f642a02c24f36cebd04963a";
