//! The `tensor-merkle-blake3-v1` weight attestation.
//!
//! For every tensor of a checkpoint (safetensors: one `.safetensors` file, a directory of
//! them, or a sharded checkpoint with `*.safetensors.index.json`, `__metadata__` not being
//! a tensor; GGUF: one `.gguf` file or the shards of one split model):
//!
//! - `data_blake3 = BLAKE3(raw data bytes)`;
//! - `leaf = BLAKE3(0x00 || JCS({"data_blake3": hex, "dtype": dtype, "name": name,
//!   "shape": [ints]}))`, JCS being RFC 8785 canonical JSON (sorted keys, no whitespace,
//!   UTF-8, minimal string escapes);
//! - leaves ordered by name (bytewise UTF-8); root = RFC 6962 Merkle tree hash with BLAKE3
//!   ([`crate::merkle`]).
//!
//! For GGUF, `dtype` is the ggml type name as gguf-py spells it (`Q4_K`, `F32`) and `shape`
//! the dims in GGUF order, ne\[0\] first (see [`crate::gguf`]).
//!
//! The root depends on tensor contents, names, dtypes and shapes only, never on how they
//! are split into files or ordered in them. Beside it, per file: the header digest
//! (BLAKE3 of the header bytes), for GGUF the metadata digest (BLAKE3 of the raw KV
//! section, which holds the tokenizer and the chat template: not a tensor, so outside the
//! root, but it changes what the model does, so verification compares it too), and on
//! request the whole-file BLAKE3 (b3sum-compatible). Whole-file digests are off by default:
//! even read in the same pass as the tensors (`attest/hashing.rs`) they hash every byte
//! twice.
//!
//! With [`Options::cache_dir`], the leaf cache ([`cache`]) keeps each file's tensor
//! digests keyed by the file's identity on disk, so re-attesting an unchanged checkpoint
//! reads no tensor data.

pub mod cache;
pub mod checkpoint;
mod hashing;
mod layout;

use std::path::{Path, PathBuf};

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

pub use cache::RACY_NS;
pub use checkpoint::Checkpoint;

use crate::error::{CoreError, Result};
use crate::merkle::{self, Hash, HashAlgo};
use hashing::blake3_of;

/// The scheme identifier recorded with every attestation.
pub const SCHEME: &str = "tensor-merkle-blake3-v1";

/// What to compute.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Record the BLAKE3 of each whole file (off by default: it costs a second hash of
    /// every byte).
    pub file_digests: bool,
    /// Hash only this many randomly chosen tensors (a partial attestation, no root).
    /// Always hashes the bytes on disk: the cache is neither read nor written.
    pub spot_check: Option<usize>,
    /// Seed of the spot-check sample.
    pub seed: u64,
    /// Leaf cache directory (see [`cache`]); `None` hashes every byte every time.
    pub cache_dir: Option<PathBuf>,
}

/// One tensor of an attestation. `data_blake3` and `leaf` are `None` for tensors a spot
/// check did not sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRecord {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Relative path of the file holding it.
    pub file: String,
    /// Absolute byte offset in that file, and length.
    pub offset: u64,
    pub bytes: u64,
    pub data_blake3: Option<Hash>,
    pub leaf: Option<Hash>,
}

/// One file of an attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub path: String,
    pub bytes: u64,
    /// BLAKE3 of the whole file (`None` when file digests were not asked for).
    pub blake3: Option<Hash>,
    /// BLAKE3 of the header: the 8-byte length and the JSON of a safetensors file;
    /// everything before the data section's padding of a GGUF file.
    pub header_blake3: Hash,
    /// GGUF only: BLAKE3 of the raw metadata (KV) section.
    pub metadata_blake3: Option<Hash>,
    pub tensors: u64,
}

/// The result of attesting a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The Merkle root; `None` for a spot check.
    pub root: Option<Hash>,
    /// All tensors, sorted by name (the leaf order).
    pub tensors: Vec<TensorRecord>,
    pub files: Vec<FileRecord>,
    /// Total size of the attested files.
    pub bytes: u64,
    /// Pickle weight files beside the weights: not covered by the root.
    pub unattested: Vec<String>,
    /// Bytes of tensor data this run read and hashed (0 when every file came from the
    /// leaf cache). Whole-file digests are not counted.
    pub tensor_bytes_hashed: u64,
    /// Files whose tensor digests came from the leaf cache.
    pub files_from_cache: u64,
}

/// An inclusion proof of one tensor: its leaf fields and the audit path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data_blake3: Hash,
    pub index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

/// The canonical (RFC 8785) JSON a leaf hashes.
pub fn leaf_json(name: &str, dtype: &str, shape: &[u64], data_blake3: &Hash) -> String {
    // serde_json escapes strings exactly as RFC 8785 does: `"` and `\`, control
    // characters as \b \t \n \f \r or lower-case \u00xx, everything else as UTF-8.
    let quote = |s: &str| serde_json::to_string(s).expect("a str always serializes");
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!(
        "{{\"data_blake3\":\"{}\",\"dtype\":{},\"name\":{},\"shape\":[{}]}}",
        hex::encode(data_blake3),
        quote(dtype),
        quote(name),
        dims.join(",")
    )
}

/// `BLAKE3(0x00 || JCS(leaf fields))`.
pub fn leaf_hash(name: &str, dtype: &str, shape: &[u64], data_blake3: &Hash) -> Hash {
    HashAlgo::Blake3.leaf_hash(leaf_json(name, dtype, shape, data_blake3).as_bytes())
}

/// Pick `k` distinct indices of `0..n` (partial Fisher-Yates), sorted.
fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    let k = k.min(n);
    for i in 0..k {
        // Modulo bias is negligible for tensor counts far below 2^64.
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Attest the checkpoint at `path`.
pub fn attest(path: &Path, opts: &Options) -> Result<Attestation> {
    let cp = Checkpoint::open(path)?;
    let headers: Vec<Hash> = cp
        .files
        .iter()
        .map(|f| *blake3::hash(f.header()).as_bytes())
        .collect();
    let mut by_file: Vec<Vec<usize>> = vec![Vec::new(); cp.files.len()];
    for (i, t) in cp.tensors.iter().enumerate() {
        by_file[t.file].push(i);
    }
    let mut digests: Vec<Option<Hash>> = vec![None; cp.tensors.len()];
    let mut file_digests: Vec<Option<Hash>> = vec![None; cp.files.len()];
    let mut cached = vec![false; cp.files.len()];
    // A spot check exists to look at the bytes as they are now: never from the cache.
    let cache = match (&opts.cache_dir, opts.spot_check) {
        (Some(dir), None) => Some(cache::LeafCache::new(dir)),
        _ => None,
    };
    if let Some(c) = &cache {
        for (fi, ts) in by_file.iter().enumerate() {
            if let Some(hit) = c.lookup(&cp, fi, ts, &headers[fi], opts.file_digests) {
                for (&i, d) in ts.iter().zip(hit.tensors) {
                    digests[i] = Some(d);
                }
                file_digests[fi] = hit.file_blake3;
                cached[fi] = true;
            }
        }
    }
    let chosen: Vec<usize> = match opts.spot_check {
        None => (0..cp.tensors.len())
            .filter(|&i| !cached[cp.tensors[i].file])
            .collect(),
        Some(k) => sample(cp.tensors.len(), k, opts.seed),
    };
    let want_files: Vec<bool> = cached.iter().map(|&c| opts.file_digests && !c).collect();
    let (hashed, fresh_files) = hashing::hash(&cp, &chosen, &want_files);
    let tensor_bytes_hashed = chosen
        .iter()
        .map(|&i| cp.tensors[i].end - cp.tensors[i].begin)
        .sum();
    for (i, d) in hashed {
        digests[i] = Some(d);
    }
    for (fi, d) in fresh_files.into_iter().enumerate() {
        if d.is_some() {
            file_digests[fi] = d;
        }
    }
    if let Some(c) = &cache {
        for (fi, ts) in by_file.iter().enumerate() {
            if !cached[fi] {
                c.store(&cp, fi, ts, &digests, &headers[fi], file_digests[fi]);
            }
        }
    }

    let tensors: Vec<TensorRecord> = cp
        .tensors
        .iter()
        .zip(&digests)
        .map(|(t, d)| TensorRecord {
            name: t.name.clone(),
            dtype: t.dtype.to_string(),
            shape: t.shape.clone(),
            file: cp.files[t.file].rel.clone(),
            offset: t.begin,
            bytes: t.end - t.begin,
            data_blake3: *d,
            leaf: d.map(|d| leaf_hash(&t.name, t.dtype, &t.shape, &d)),
        })
        .collect();
    let root = opts.spot_check.is_none().then(|| {
        let leaves: Vec<Hash> = tensors.iter().filter_map(|t| t.leaf).collect();
        merkle::root(HashAlgo::Blake3, &leaves)
    });
    let files: Vec<FileRecord> = cp
        .files
        .iter()
        .enumerate()
        .map(|(fi, f)| FileRecord {
            path: f.rel.clone(),
            bytes: f.map.len() as u64,
            blake3: file_digests[fi],
            header_blake3: headers[fi],
            metadata_blake3: f.metadata().map(|m| *blake3::hash(m).as_bytes()),
            tensors: f.tensors,
        })
        .collect();
    Ok(Attestation {
        root,
        bytes: files.iter().map(|f| f.bytes).sum(),
        tensors,
        files,
        unattested: cp.unattested.clone(),
        tensor_bytes_hashed,
        files_from_cache: cached.iter().filter(|&&c| c).count() as u64,
    })
}

impl Attestation {
    /// Inclusion proof of tensor `name`. Needs a full attestation (every leaf known).
    pub fn prove(&self, name: &str) -> Result<InclusionProof> {
        let index = self
            .tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .map_err(|_| CoreError::NotFound(format!("no tensor named {name:?}")))?;
        let leaves: Option<Vec<Hash>> = self.tensors.iter().map(|t| t.leaf).collect();
        let leaves = leaves.ok_or_else(|| {
            CoreError::invalid("a spot check does not know every leaf; attest fully to prove")
        })?;
        let t = &self.tensors[index];
        Ok(InclusionProof {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            data_blake3: t.data_blake3.expect("full attestation"),
            index: index as u64,
            tree_size: leaves.len() as u64,
            path: merkle::inclusion_proof(HashAlgo::Blake3, &leaves, index)?,
        })
    }
}

impl InclusionProof {
    /// The leaf this proof is about, recomputed from its fields.
    pub fn leaf(&self) -> Hash {
        leaf_hash(&self.name, &self.dtype, &self.shape, &self.data_blake3)
    }

    /// True when the proof places its tensor under `root`.
    pub fn verify(&self, root: &Hash) -> bool {
        merkle::verify_inclusion(
            HashAlgo::Blake3,
            &self.leaf(),
            self.index,
            self.tree_size,
            &self.path,
            root,
        )
    }
}

/// What one tensor of a checkpoint on disk hashes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDigest {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub file: String,
    pub data_blake3: Hash,
    pub leaf: Hash,
}

/// Validate the checkpoint's headers and hash the bytes of one tensor only (the rest of
/// the data is never read).
pub fn tensor_digest(path: &Path, name: &str) -> Result<TensorDigest> {
    let cp = Checkpoint::open(path)?;
    let i = cp
        .find(name)
        .ok_or_else(|| CoreError::NotFound(format!("no tensor named {name:?}")))?;
    let t = &cp.tensors[i];
    let data_blake3 = blake3_of(cp.data(i));
    let dtype = t.dtype.to_string();
    Ok(TensorDigest {
        leaf: leaf_hash(&t.name, &dtype, &t.shape, &data_blake3),
        name: t.name.clone(),
        dtype,
        shape: t.shape.clone(),
        file: cp.files[t.file].rel.clone(),
        data_blake3,
    })
}

/// Check one tensor of the checkpoint at `path` against an inclusion proof and a root,
/// reading only that tensor's bytes. False when the bytes, dtype or shape on disk differ
/// from the proof, or the proof does not lead to `root`.
pub fn verify_tensor(path: &Path, proof: &InclusionProof, root: &Hash) -> Result<bool> {
    let d = tensor_digest(path, &proof.name)?;
    Ok(d.dtype == proof.dtype
        && d.shape == proof.shape
        && d.data_blake3 == proof.data_blake3
        && proof.verify(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_json_is_canonical() {
        let d = [0xabu8; 32];
        let j = leaf_json("enc.\"w\"\n\u{e9}", "F16", &[2, 3], &d);
        assert_eq!(
            j,
            format!(
                "{{\"data_blake3\":\"{}\",\"dtype\":\"F16\",\"name\":\"enc.\\\"w\\\"\\n\u{e9}\",\"shape\":[2,3]}}",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            leaf_json("s", "F32", &[], &d).rsplit(':').next(),
            Some("[]}")
        );
        assert!(leaf_json("\u{1f}\u{7f}", "U8", &[1], &d).contains("\\u001f\u{7f}"));
    }

    #[test]
    fn sample_is_distinct_sorted_and_seeded() {
        let s = sample(100, 10, 7);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, sample(100, 10, 7));
        assert_ne!(s, sample(100, 10, 8));
        assert_eq!(sample(3, 10, 1), vec![0, 1, 2]);
    }
}
