//! Property tests of GGUF attestation: any valid layout parses back to what was written and
//! attests to the scheme's root; the root does not depend on the order or alignment of the
//! tensors in the file; a flipped data byte changes exactly its tensor's leaf (or, in
//! padding, is refused); and hostile header mutations never panic.

mod attest_support;

use std::path::Path;

use attest_support::gguf::{Gguf, Tensor, Val, TYPES};
use attest_support::{from_gguf, reference_root};
use proptest::prelude::*;
use relgate_core::attest::{self, Options};
use relgate_core::gguf;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// Up to 8 tensors of any test type, 1 to 4 dims, ne[0] a multiple of the block size.
fn tensors() -> impl Strategy<Value = Vec<Tensor>> {
    let one = (
        0..TYPES.len(),
        1u64..4,
        prop::collection::vec(1u64..4, 0..3),
        any::<u64>(),
    );
    prop::collection::vec(one, 0..8).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (ty, blocks, rest, seed))| {
                let (_, name, bs, _) = TYPES[ty];
                let mut dims = vec![blocks * bs];
                dims.extend(rest);
                // A shared prefix and a non-ASCII name, to exercise the byte order.
                let n = if i % 3 == 2 {
                    format!("blk.{i}.\u{e9}")
                } else {
                    format!("blk.{i}.weight")
                };
                Tensor::new(&n, name, &dims, seed)
            })
            .collect()
    })
}

fn alignment() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![1u64, 2, 8, 32, 64, 256])
}

fn root_of(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("m.gguf");
    std::fs::write(&path, bytes).unwrap();
    hex::encode(
        attest::attest(&path, &Options::default())
            .unwrap()
            .root
            .unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn valid_layouts_round_trip(ts in tensors(), align in alignment(), extra in 0usize..4) {
        let mut g = Gguf::new(ts);
        g.alignment = align;
        for i in 0..extra {
            g = g.kv(&format!("x.{i}"), Val::Arr(8, vec![Val::str("tok"); i]));
        }
        let (bytes, layout) = g.build();
        let h = gguf::parse(Path::new("p"), &bytes).unwrap();
        prop_assert_eq!(h.alignment, align);
        prop_assert_eq!(h.data_start, layout.data_start);
        prop_assert_eq!(h.kv.clone(), layout.kv_start..layout.kv_end);
        prop_assert_eq!(h.tensors.len(), g.tensors.len());
        for (t, off) in g.tensors.iter().zip(&layout.offsets) {
            let got = h.tensors.iter().find(|x| x.name.as_bytes() == t.name).unwrap();
            prop_assert_eq!(got.ggml_type.id, t.ggml_type);
            prop_assert_eq!(&got.shape, &t.dims);
            prop_assert_eq!(h.data_start + got.begin, *off);
            prop_assert_eq!(got.len(), t.data.len() as u64);
        }
        let dir = tempfile::tempdir().unwrap();
        prop_assert_eq!(root_of(dir.path(), &bytes), reference_root(&from_gguf(&g.tensors)));
    }

    #[test]
    fn the_root_ignores_order_and_alignment_in_the_file(
        ts in tensors(),
        perm in any::<prop::sample::Index>(),
        align in alignment(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let want = root_of(dir.path(), &Gguf::new(ts.clone()).bytes());
        let mut shuffled = ts;
        if !shuffled.is_empty() {
            let k = perm.index(shuffled.len());
            shuffled.rotate_left(k);
            shuffled.reverse();
        }
        let mut g = Gguf::new(shuffled);
        g.alignment = align;
        prop_assert_eq!(root_of(dir.path(), &g.bytes()), want);
    }

    #[test]
    fn a_flipped_byte_changes_exactly_its_tensors_leaf(
        ts in tensors(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let g = Gguf::new(ts);
        let (bytes, layout) = g.build();
        prop_assume!(bytes.len() as u64 > layout.data_start);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, &bytes).unwrap();
        let base = attest::attest(&path, &Options::default()).unwrap();
        let pos = layout.data_start as usize + at.index(bytes.len() - layout.data_start as usize);
        let mut flipped = bytes.clone();
        flipped[pos] ^= 1 << bit;
        std::fs::write(&path, &flipped).unwrap();
        let owner = base
            .tensors
            .iter()
            .find(|t| (t.offset..t.offset + t.bytes).contains(&(pos as u64)));
        match (attest::attest(&path, &Options::default()), owner) {
            (Ok(after), Some(owner)) => {
                prop_assert_ne!(after.root, base.root);
                for (a, b) in after.tensors.iter().zip(&base.tensors) {
                    prop_assert_eq!(a.leaf != b.leaf, a.name == owner.name, "{}", a.name);
                }
            }
            (Err(relgate_core::CoreError::Integrity { rule, .. }), None) => {
                prop_assert_eq!(rule, gguf::rules::PADDING)
            }
            (other, owner) => prop_assert!(false, "byte {pos} (owner {owner:?}): {other:?}"),
        }
    }

    #[test]
    fn the_parser_never_panics_on_random_bytes(
        tail in prop::collection::vec(any::<u8>(), 0..300),
        version in 0u32..5,
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let _ = gguf::parse(Path::new("fuzz"), &bytes);
    }

    #[test]
    fn the_parser_never_panics_on_mutated_headers(
        ts in tensors(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let (mut bytes, layout) = Gguf::new(ts).build();
        // Aim the edits at the header, where the parser makes its decisions.
        let header = layout.header_end as usize;
        for (at, byte, op) in edits {
            let i = at.index(header.min(bytes.len()).max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(h) = gguf::parse(Path::new("fuzz"), &bytes) {
            // Whatever it accepted lies inside the file, without overlap, aligned.
            let data_len = bytes.len() as u64 - h.data_start.min(bytes.len() as u64);
            let mut end = 0;
            for t in &h.tensors {
                prop_assert!(t.begin >= end && t.end <= data_len && t.begin % h.alignment == 0);
                end = t.end;
            }
            prop_assert!(data_len - end < h.alignment);
        }
    }
}
