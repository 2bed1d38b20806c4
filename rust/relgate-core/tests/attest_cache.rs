//! The leaf cache never changes a result: an unchanged checkpoint re-attests without
//! reading tensor data, a changed shard is re-hashed alone, spot checks ignore the cache,
//! damaged or foreign entries are ignored and replaced, and a change that keeps the file's
//! (size, mtime, ctime) is exactly what the cache cannot see.

mod attest_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use attest_support::gguf::{small_model, Gguf};
use attest_support::{write_sharded, T};
use relgate_core::attest::{self, Attestation, Options};

fn t(name: &str, n: usize, seed: u8) -> T {
    T {
        name: name.into(),
        dtype: "U8",
        shape: vec![n as u64],
        data: (0..n)
            .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
            .collect(),
    }
}

/// A 4-shard checkpoint whose files were last modified a minute ago (files modified less
/// than RACY_NS before an attestation are not cached).
fn four_shards(dir: &Path) -> Vec<PathBuf> {
    let shards: Vec<Vec<T>> = (0..4u8)
        .map(|s| {
            (0..3u8)
                .map(|i| {
                    t(
                        &format!("l{s}.t{i}"),
                        1000 + 97 * usize::from(i),
                        3 * s + i + 1,
                    )
                })
                .collect()
        })
        .collect();
    write_sharded(dir, &shards);
    let files: Vec<PathBuf> = (1..=4)
        .map(|i| dir.join(format!("model-{i:05}-of-00004.safetensors")))
        .collect();
    files.iter().for_each(|f| age(f));
    files
}

fn age(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

fn cached(cache: &Path) -> Options {
    Options {
        cache_dir: Some(cache.to_path_buf()),
        ..Options::default()
    }
}

fn run(path: &Path, opts: &Options) -> Attestation {
    attest::attest(path, opts).unwrap()
}

fn data_bytes(a: &Attestation) -> u64 {
    a.tensors.iter().map(|t| t.bytes).sum()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn an_unchanged_checkpoint_reattests_without_reading_tensor_data() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    four_shards(dir.path());
    let fresh = run(dir.path(), &Options::default());
    let first = run(dir.path(), &cached(&cache));
    assert_eq!(
        (first.files_from_cache, first.tensor_bytes_hashed),
        (0, data_bytes(&fresh))
    );
    assert_eq!(entries(&cache).len(), 4);
    let again = run(dir.path(), &cached(&cache));
    assert_eq!((again.files_from_cache, again.tensor_bytes_hashed), (4, 0));
    assert_eq!((&again.tensors, again.root), (&fresh.tensors, fresh.root));
    assert_eq!(again.files, fresh.files);
}

#[test]
fn a_changed_shard_is_rehashed_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let files = four_shards(dir.path());
    let before = run(dir.path(), &cached(&cache));
    let victim = before.tensors.iter().find(|t| t.name == "l2.t1").unwrap();
    flip(&files[2], victim.offset + 10);
    age(&files[2]);
    let after = run(dir.path(), &cached(&cache));
    let shard: u64 = before
        .tensors
        .iter()
        .filter(|t| t.file == "model-00003-of-00004.safetensors")
        .map(|t| t.bytes)
        .sum();
    assert_eq!(
        (after.files_from_cache, after.tensor_bytes_hashed),
        (3, shard)
    );
    assert_ne!(after.root, before.root);
    let truth = run(dir.path(), &Options::default());
    assert_eq!((&after.tensors, after.root), (&truth.tensors, truth.root));
    let changed: Vec<_> = after
        .tensors
        .iter()
        .zip(&before.tensors)
        .filter(|(a, b)| a.leaf != b.leaf)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, ["l2.t1"]);
}

#[test]
fn restoring_the_mtime_does_not_hide_a_change() {
    // utimensat sets ctime, which is in the key.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let files = four_shards(dir.path());
    let before = run(dir.path(), &cached(&cache));
    let mtime = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    flip(&files[0], before.tensors[0].offset);
    let f = std::fs::File::options()
        .write(true)
        .open(&files[0])
        .unwrap();
    f.set_modified(mtime).unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        mtime
    );
    let after = run(dir.path(), &cached(&cache));
    assert_eq!(after.files_from_cache, 3);
    assert_eq!(after.root, run(dir.path(), &Options::default()).root);
    assert_ne!(after.root, before.root);
}

#[test]
fn spot_checks_never_use_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    four_shards(dir.path());
    let spot = Options {
        spot_check: Some(3),
        seed: 1,
        ..cached(&cache)
    };
    let a = run(dir.path(), &spot);
    assert_eq!(a.files_from_cache, 0);
    assert!(entries(&cache).is_empty(), "a spot check wrote the cache");
    let sampled: u64 = a
        .tensors
        .iter()
        .filter(|t| t.leaf.is_some())
        .map(|t| t.bytes)
        .sum();
    assert_eq!(a.tensor_bytes_hashed, sampled);
    run(dir.path(), &cached(&cache));
    let b = run(dir.path(), &spot);
    assert_eq!((b.files_from_cache, b.tensor_bytes_hashed), (0, sampled));
}

#[test]
fn damaged_or_foreign_entries_are_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    four_shards(dir.path());
    let truth = run(dir.path(), &cached(&cache));
    let es = entries(&cache);
    let good = std::fs::read(&es[0]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = json.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", b"\x00\xffnot json".to_vec()),
        ("empty", Vec::new()),
        ("other version", with(&|v| v["version"] = 2.into())),
        (
            "other format",
            with(&|v| v["format"] = "something-else".into()),
        ),
        (
            "other path",
            with(&|v| v["path"] = "/elsewhere/model.safetensors".into()),
        ),
        ("other key", with(&|v| v["key"]["ino"] = 1.into())),
        (
            "forged digest",
            with(&|v| v["tensors"][0]["data_blake3"] = "zz".into()),
        ),
        (
            "tensor missing",
            with(&|v| {
                v["tensors"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "other tensor",
            with(&|v| v["tensors"][0]["name"] = "l9.t9".into()),
        ),
        ("foreign entry", std::fs::read(&es[1]).unwrap()),
    ];
    for (case, bytes) in damaged {
        std::fs::write(&es[0], &bytes).unwrap();
        let a = run(dir.path(), &cached(&cache));
        assert_eq!(a.files_from_cache, 3, "{case}");
        assert_eq!((&a.tensors, a.root), (&truth.tensors, truth.root), "{case}");
        assert_eq!(std::fs::read(&es[0]).unwrap(), good, "{case}: not replaced");
    }
    // Leftover temporary files from a crashed writer are harmless.
    assert_eq!(entries(&cache).len(), 4);
}

#[test]
fn an_unusable_cache_directory_only_costs_time() {
    let dir = tempfile::tempdir().unwrap();
    four_shards(dir.path());
    let not_a_dir = dir.path().join("cache-file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let a = run(dir.path(), &cached(&not_a_dir));
    let b = run(dir.path(), &cached(&not_a_dir));
    assert_eq!(b.root, a.root);
    assert_eq!(b.files_from_cache, 0);
}

#[test]
fn recently_modified_files_are_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let path = dir.path().join("fresh.gguf");
    std::fs::write(&path, Gguf::new(small_model()).bytes()).unwrap();
    run(&path, &cached(&cache));
    assert!(entries(&cache).is_empty());
    age(&path);
    run(&path, &cached(&cache));
    let again = run(&path, &cached(&cache));
    assert_eq!((again.files_from_cache, again.tensor_bytes_hashed), (1, 0));
}

#[test]
fn file_digests_come_from_the_cache_only_when_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    four_shards(dir.path());
    run(dir.path(), &cached(&cache));
    let with_files = Options {
        file_digests: true,
        ..cached(&cache)
    };
    let a = run(dir.path(), &with_files);
    assert_eq!(
        a.files_from_cache, 0,
        "entries without file digests are misses"
    );
    assert!(a.files.iter().all(|f| f.blake3.is_some()));
    let b = run(dir.path(), &with_files);
    assert_eq!((b.files_from_cache, b.tensor_bytes_hashed), (4, 0));
    assert_eq!(b.files, a.files);
    // An entry with file digests serves a run that does not want them.
    let c = run(dir.path(), &cached(&cache));
    assert_eq!(c.files_from_cache, 4);
    assert!(c.files.iter().all(|f| f.blake3.is_some()));
}

#[cfg(unix)]
#[test]
fn a_write_that_keeps_the_times_is_what_the_cache_cannot_see() {
    // A writer that keeps the file mapped: the kernel updates mtime/ctime on the first
    // write fault of a clean page only, so a second write into the same (still dirty)
    // page leaves (size, mtime, ctime) as they were, unless writeback cleaned the page
    // in between. The cache is keyed by exactly those: it misses the change exactly when
    // the key did not move. Without the cache, and in a spot check, the change is seen.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, Gguf::new(small_model()).bytes()).unwrap();
    let plain = run(&path, &Options::default());
    let target = plain.tensors.iter().find(|t| t.bytes > 64).unwrap();
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: a shared writable map of a file this test alone uses; the attestations
    // below map it read-only and see the writes through the shared page cache.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    let at = target.offset as usize;
    map[at] ^= 1; // first write fault: times move
    age(&path); // an old mtime, so the entry is recorded (ctime is now)
    let recorded = run(&path, &cached(&cache));
    assert_eq!(recorded.files_from_cache, 0);
    let stat = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    };
    let key = stat(&path);
    map[at + 1] ^= 1; // same dirty page: no fault, no time update
    let unchanged = stat(&path) == key;
    eprintln!("(size, mtime, ctime) unchanged by the second write: {unchanged}");
    let through_cache = run(&path, &cached(&cache));
    let truth = run(&path, &Options::default());
    assert_ne!(truth.root, recorded.root, "the write is real");
    if unchanged {
        // The documented blind spot: the cached path reports the recorded state.
        assert_eq!(
            (through_cache.files_from_cache, through_cache.root),
            (1, recorded.root)
        );
    } else {
        // Writeback cleaned the page in between: the key moved and the cache saw it.
        assert_eq!(
            (through_cache.files_from_cache, through_cache.root),
            (0, truth.root)
        );
    }
    let spot = Options {
        spot_check: Some(plain.tensors.len()),
        ..cached(&cache)
    };
    let spotted = run(&path, &spot);
    let t = spotted
        .tensors
        .iter()
        .find(|t| t.name == target.name)
        .unwrap();
    let want = truth
        .tensors
        .iter()
        .find(|t| t.name == target.name)
        .unwrap();
    assert_eq!(t.leaf, want.leaf);
    drop(map);
}
