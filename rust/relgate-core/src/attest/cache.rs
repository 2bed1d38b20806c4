//! The leaf cache: re-attesting a checkpoint whose files did not change reads no tensor
//! bytes.
//!
//! A directory of small JSON files, one per weight file, named by a hash of the file's
//! canonical absolute path, so any number of processes (Ray tasks, batch re-attestation)
//! can share it. An entry holds the file's key and its tensor records:
//!
//! ```json
//! {"format": "relgate-leaf-cache", "version": 1, "scheme": "tensor-merkle-blake3-v1",
//!  "path": "/abs/model.gguf",
//!  "key": {"dev": 2049, "ino": 1234, "size": 98362432, "mtime_ns": ..., "ctime_ns": ...,
//!          "header_blake3": "<hex>"},
//!  "file_blake3": "<hex>" | null,
//!  "tensors": [{"name", "dtype", "shape", "offset", "bytes", "data_blake3"}, ...]}
//! ```
//!
//! The key is `(device, inode, size, mtime_ns, ctime_ns, BLAKE3(header))`; the header is
//! read and hashed on every run, the tensor data only when the key differs, and then every
//! tensor of that file is re-hashed. Entries are written to a temporary file and renamed
//! into place, so readers see a whole entry or none; an entry that does not parse, has
//! another version, names another path, or whose tensors differ from the header is
//! ignored and overwritten. Cache failures never fail an attestation.
//!
//! What the cache trusts: that a change to a file's bytes moves its (mtime, ctime, size,
//! inode). A write that leaves all of them as they were is not seen: a writer that keeps
//! the file mapped and writes into a page already dirty (the kernel updates the times on
//! the first write fault only), a filesystem that does not maintain ctime, or a change
//! made below the filesystem. `os.utime` alone does not hide a change: it sets ctime. A
//! file modified less than [`RACY_NS`] before it was opened is not recorded (git's
//! "racily clean" rule), so a write landing in the same timestamp tick as the recorded
//! one cannot be missed. Spot checks never use the cache, and `cache_dir=None` is the
//! paranoid mode: every byte hashed every time. Whoever can write the cache directory can
//! make an attestation report digests of their choosing: give it the permissions of the
//! attestations themselves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, OpenFile};
use super::SCHEME;
use crate::merkle::Hash;

const FORMAT: &str = "relgate-leaf-cache";
const VERSION: u32 = 1;
/// Entries larger than this are not read (a real one is about 200 bytes per tensor).
const MAX_ENTRY_LEN: u64 = 256 << 20;
/// Files modified this recently are not recorded.
pub const RACY_NS: i64 = 2_000_000_000;

/// What identifies one state of a weight file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Key {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    header_blake3: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct EntryTensor {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    offset: u64,
    bytes: u64,
    data_blake3: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: String,
    version: u32,
    scheme: String,
    path: String,
    key: Key,
    file_blake3: Option<String>,
    tensors: Vec<EntryTensor>,
}

/// What a cache hit gives back.
pub(crate) struct Hit {
    /// The digests of the file's tensors, in the order they were asked for.
    pub tensors: Vec<Hash>,
    pub file_blake3: Option<Hash>,
}

/// A leaf cache directory.
pub(crate) struct LeafCache {
    dir: PathBuf,
}

#[cfg(unix)]
fn times(meta: &std::fs::Metadata) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| s.checked_mul(1_000_000_000)?.checked_add(n);
    Some((
        meta.dev(),
        meta.ino(),
        ns(meta.mtime(), meta.mtime_nsec())?,
        ns(meta.ctime(), meta.ctime_nsec())?,
    ))
}

#[cfg(not(unix))]
fn times(_meta: &std::fs::Metadata) -> Option<(u64, u64, i64, i64)> {
    // Without inode and ctime the key would be too weak: no cache.
    None
}

fn key(f: &OpenFile, header_blake3: &Hash) -> Option<Key> {
    let (dev, ino, mtime_ns, ctime_ns) = times(&f.meta)?;
    // The map was taken after the fstat: if the sizes differ the file moved in between.
    if f.meta.len() != f.map.len() as u64 {
        return None;
    }
    Some(Key {
        dev,
        ino,
        size: f.meta.len(),
        mtime_ns,
        ctime_ns,
        header_blake3: hex::encode(header_blake3),
    })
}

fn unhex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl LeafCache {
    pub fn new(dir: &Path) -> LeafCache {
        LeafCache {
            dir: dir.to_path_buf(),
        }
    }

    /// The entry file of a weight file, and its canonical path.
    fn locate(&self, f: &OpenFile) -> Option<(PathBuf, String)> {
        let canonical = std::fs::canonicalize(&f.path).ok()?;
        let canonical = canonical.to_str()?.to_string();
        let mut h = blake3::Hasher::new();
        h.update(b"relgate-leaf-cache\0");
        h.update(canonical.as_bytes());
        let name = hex::encode(&h.finalize().as_bytes()[..16]);
        Some((self.dir.join(format!("{name}.json")), canonical))
    }

    /// The cached digests of file `fi`'s tensors `tensors` (indices into `cp.tensors`, all
    /// of that file), if the entry is present, intact and its key is the file's. With
    /// `need_file_digest`, an entry without the whole-file digest is a miss.
    pub fn lookup(
        &self,
        cp: &Checkpoint,
        fi: usize,
        tensors: &[usize],
        header_blake3: &Hash,
        need_file_digest: bool,
    ) -> Option<Hit> {
        let f = &cp.files[fi];
        let key = key(f, header_blake3)?;
        let (entry_path, canonical) = self.locate(f)?;
        let file = std::fs::File::open(&entry_path).ok()?;
        if file.metadata().ok()?.len() > MAX_ENTRY_LEN {
            return None;
        }
        let entry: Entry = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
        if entry.format != FORMAT
            || entry.version != VERSION
            || entry.scheme != SCHEME
            || entry.path != canonical
            || entry.key != key
            || entry.tensors.len() != tensors.len()
        {
            return None;
        }
        let file_blake3 = match &entry.file_blake3 {
            Some(h) => Some(unhex(h)?),
            None if need_file_digest => return None,
            None => None,
        };
        let mut digests = Vec::with_capacity(tensors.len());
        for (e, &i) in entry.tensors.iter().zip(tensors) {
            let t = &cp.tensors[i];
            if e.name != t.name
                || e.dtype != t.dtype
                || e.shape != t.shape
                || e.offset != t.begin
                || e.bytes != t.end - t.begin
            {
                return None;
            }
            digests.push(unhex(&e.data_blake3)?);
        }
        Some(Hit {
            tensors: digests,
            file_blake3,
        })
    }

    /// Record file `fi`'s tensor digests (`digests[i]` for each `i` of `tensors`).
    /// Best effort: an error (read-only directory, full disk) only means no entry.
    pub fn store(
        &self,
        cp: &Checkpoint,
        fi: usize,
        tensors: &[usize],
        digests: &[Option<Hash>],
        header_blake3: &Hash,
        file_blake3: Option<Hash>,
    ) {
        let f = &cp.files[fi];
        let Some(key) = key(f, header_blake3) else {
            return;
        };
        // Modified shortly before the fstat: a later write could share its timestamp.
        if key.mtime_ns > f.statted_ns.saturating_sub(RACY_NS) {
            return;
        }
        let Some((entry_path, canonical)) = self.locate(f) else {
            return;
        };
        let mut records = Vec::with_capacity(tensors.len());
        for &i in tensors {
            let t = &cp.tensors[i];
            let Some(d) = digests[i] else {
                return;
            };
            records.push(EntryTensor {
                name: t.name.clone(),
                dtype: t.dtype.to_string(),
                shape: t.shape.clone(),
                offset: t.begin,
                bytes: t.end - t.begin,
                data_blake3: hex::encode(d),
            });
        }
        let entry = Entry {
            format: FORMAT.to_string(),
            version: VERSION,
            scheme: SCHEME.to_string(),
            path: canonical,
            key,
            file_blake3: file_blake3.map(hex::encode),
            tensors: records,
        };
        let _ = self.write_atomically(&entry_path, &entry);
    }

    fn write_atomically(&self, path: &Path, entry: &Entry) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}
