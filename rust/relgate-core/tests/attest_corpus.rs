//! Checkpoint-level failures: each malformed layout gives an IntegrityError with its
//! stable rule and the file it concerns. (Per-file header rules are covered beside the
//! parser in src/safetensors.rs and end to end by the Python corpus in tests/data.)

mod attest_support;

use std::path::Path;

use attest_support::{write, write_sharded, T};
use relgate_core::attest::{self, Options};
use relgate_core::CoreError;

fn t(name: &str) -> T {
    T {
        name: name.into(),
        dtype: "U8",
        shape: vec![2],
        data: vec![7, 9],
    }
}

fn rule_and_path(path: &Path) -> (&'static str, String) {
    match attest::attest(path, &Options::default()) {
        Err(CoreError::Integrity { rule, path, .. }) => (rule, path.display().to_string()),
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

fn sharded(dir: &Path) {
    write_sharded(dir, &[vec![t("a"), t("b")], vec![t("c"), t("d")]]);
}

fn edit_index(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("model.safetensors.index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn valid_sharded_checkpoint_attests() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    let att = attest::attest(dir.path(), &Options::default()).unwrap();
    assert_eq!(att.tensors.len(), 4);
    assert_eq!(att.files.len(), 2);
    assert_eq!(att.files[0].path, "model-00001-of-00002.safetensors");
}

#[test]
fn duplicate_names_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("x.safetensors"), &[t("a"), t("b")]);
    write(&dir.path().join("y.safetensors"), &[t("b")]);
    let (rule, path) = rule_and_path(dir.path());
    assert_eq!(rule, "duplicate-name");
    assert!(path.ends_with("y.safetensors"), "{path}");
}

#[test]
fn index_naming_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let (rule, path) = rule_and_path(dir.path());
    assert_eq!(rule, "index-missing-file");
    assert!(path.ends_with("model.safetensors.index.json"));
}

#[test]
fn tensor_in_the_wrong_file() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    edit_index(dir.path(), |v| {
        v["weight_map"]["c"] = "model-00001-of-00002.safetensors".into();
    });
    let (rule, path) = rule_and_path(dir.path());
    assert_eq!(rule, "index-wrong-file");
    assert!(path.ends_with("model-00002-of-00002.safetensors"));
}

#[test]
fn tensor_missing_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    edit_index(dir.path(), |v| {
        v["weight_map"].as_object_mut().unwrap().remove("b");
    });
    assert_eq!(rule_and_path(dir.path()).0, "index-missing-tensor");
}

#[test]
fn index_listing_a_tensor_no_shard_holds() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    edit_index(dir.path(), |v| {
        v["weight_map"]["ghost"] = "model-00001-of-00002.safetensors".into();
    });
    assert_eq!(rule_and_path(dir.path()).0, "index-unknown-tensor");
}

#[test]
fn index_escaping_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    edit_index(dir.path(), |v| {
        v["weight_map"]["c"] = "../model-00002-of-00002.safetensors".into();
    });
    assert_eq!(rule_and_path(dir.path()).0, "index-path");
}

#[test]
fn malformed_index_and_unlisted_shard() {
    let dir = tempfile::tempdir().unwrap();
    sharded(dir.path());
    write(&dir.path().join("extra.safetensors"), &[t("z")]);
    assert_eq!(rule_and_path(dir.path()).0, "index-unlisted-file");
    std::fs::remove_file(dir.path().join("extra.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors.index.json"), b"[1]").unwrap();
    assert_eq!(rule_and_path(dir.path()).0, "index-json");
}

#[test]
fn pickle_weights_are_not_attestable_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    // Not a pickle at all: if it were opened and parsed, the error would differ.
    std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x04garbage").unwrap();
    assert_eq!(rule_and_path(dir.path()).0, "not-attestable");
    assert_eq!(
        rule_and_path(&dir.path().join("pytorch_model.bin")).0,
        "not-attestable"
    );
    // Beside safetensors, they are listed as unattested rather than failing.
    write(&dir.path().join("model.safetensors"), &[t("a")]);
    let att = attest::attest(dir.path(), &Options::default()).unwrap();
    assert_eq!(att.unattested, vec!["pytorch_model.bin".to_string()]);
}

#[test]
fn empty_directory_and_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(rule_and_path(dir.path()).0, "no-weights");
    let empty = dir.path().join("e.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(rule_and_path(&empty).0, "file-too-small");
}
