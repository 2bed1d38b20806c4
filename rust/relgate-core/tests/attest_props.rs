//! Property tests of the attestation: the root is the scheme's root, it survives
//! re-sharding, it changes with every data byte, proofs round-trip, and the header parser
//! never panics on hostile bytes.

mod attest_support;

use std::path::Path;

use attest_support::{reference_root, safetensors_bytes, write, write_sharded, T};
use proptest::prelude::*;
use relgate_core::attest::{self, Options};
use relgate_core::safetensors;

fn root_of(path: &Path) -> String {
    hex::encode(
        attest::attest(path, &Options::default())
            .unwrap()
            .root
            .unwrap(),
    )
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn tensor_strategy() -> impl Strategy<Value = Vec<T>> {
    let dtypes = prop::sample::select(vec!["U8", "F16", "BF16", "F32", "I64"]);
    let one = (dtypes, prop::collection::vec(0u64..4, 0..3), any::<u64>());
    prop::collection::vec(one, 0..10).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (dtype, shape, seed))| {
                let n: u64 = shape.iter().product::<u64>() * attest_support::dtype_bytes(dtype);
                let data = (0..n)
                    .map(|j| (seed.wrapping_mul(j + 1) >> 7) as u8)
                    .collect();
                // Names with a common prefix and one non-ASCII, to exercise byte order.
                let name = if i % 4 == 3 {
                    format!("layer.\u{e9}{i}")
                } else {
                    format!("layer.{i}.w")
                };
                T {
                    name,
                    dtype,
                    shape,
                    data,
                }
            })
            .collect()
    })
}

proptest! {
    // 48 cases by default; PROPTEST_CASES=N for a longer run.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn root_is_the_schemes_root_and_survives_resharding(
        tensors in tensor_strategy(),
        assignment in prop::collection::vec(0usize..3, 10),
        reverse in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let single = dir.path().join("model.safetensors");
        write(&single, &tensors);
        let want = reference_root(&tensors);
        prop_assert_eq!(root_of(&single), want.clone());

        let mut shards: Vec<Vec<T>> = vec![Vec::new(); 3];
        for (i, t) in tensors.iter().enumerate() {
            shards[assignment[i]].push(t.clone());
        }
        if reverse {
            shards.iter_mut().for_each(|s| s.reverse());
        }
        let sharded = dir.path().join("sharded");
        std::fs::create_dir(&sharded).unwrap();
        write_sharded(&sharded, &shards);
        prop_assert_eq!(root_of(&sharded), want.clone());
        // The index file itself, and a plain directory without the index, agree too.
        prop_assert_eq!(root_of(&sharded.join("model.safetensors.index.json")), want.clone());
        if !tensors.is_empty() {
            std::fs::remove_file(sharded.join("model.safetensors.index.json")).unwrap();
            prop_assert_eq!(root_of(&sharded), want);
        }
    }

    #[test]
    fn every_flipped_data_byte_changes_the_root(tensors in tensor_strategy(), bit in 0u8..8) {
        let bytes = safetensors_bytes(&tensors);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let base = root_of(&path);
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for pos in 8 + header_len..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[pos] ^= 1 << bit;
            std::fs::write(&path, &flipped).unwrap();
            prop_assert_ne!(root_of(&path), base.clone(), "byte {}", pos);
        }
    }

    #[test]
    fn proofs_round_trip(tensors in tensor_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        write(&path, &tensors);
        let att = attest::attest(&path, &Options::default()).unwrap();
        let root = att.root.unwrap();
        for t in &tensors {
            let proof = att.prove(&t.name).unwrap();
            prop_assert!(proof.verify(&root));
            prop_assert!(attest::verify_tensor(&path, &proof, &root).unwrap());
            let mut wrong = proof.clone();
            wrong.data_blake3[0] ^= 1;
            prop_assert!(!wrong.verify(&root));
            prop_assert!(!attest::verify_tensor(&path, &wrong, &root).unwrap());
        }
        prop_assert!(att.prove("no such tensor").is_err());
    }

    #[test]
    fn header_parser_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = safetensors::parse(Path::new("fuzz"), &bytes);
    }

    #[test]
    fn header_parser_never_panics_on_mutated_headers(
        tensors in tensor_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = safetensors_bytes(&tensors);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        if let Ok(h) = safetensors::parse(Path::new("fuzz"), &bytes) {
            // Whatever it accepted must tile the data section it really has.
            let data_len = bytes.len() as u64 - h.data_start();
            prop_assert_eq!(h.tensors.iter().map(|t| t.len()).sum::<u64>(), data_len);
        }
    }
}

#[test]
fn spot_check_hashes_only_its_sample() {
    let tensors: Vec<T> = (0..20)
        .map(|i| T {
            name: format!("t{i:02}"),
            dtype: "U8",
            shape: vec![3],
            data: vec![i as u8; 3],
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write(&path, &tensors);
    let full = attest::attest(&path, &Options::default()).unwrap();
    let opts = Options {
        spot_check: Some(5),
        seed: 3,
        ..Options::default()
    };
    let spot = attest::attest(&path, &opts).unwrap();
    assert!(spot.root.is_none());
    let sampled: Vec<_> = spot.tensors.iter().filter(|t| t.leaf.is_some()).collect();
    assert_eq!(sampled.len(), 5);
    for t in sampled {
        let f = full.tensors.iter().find(|f| f.name == t.name).unwrap();
        assert_eq!(f.leaf, t.leaf);
    }
    assert!(spot.prove("t00").is_err());
}
