//! Opening the files of a checkpoint (see `attest/layout.rs` for which files those are):
//! every header is validated, names must be unique across shards, the safetensors index
//! must agree with the shards, and the shards of a split GGUF model with their
//! `split.no` / `split.count`.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::layout::{index_name, Layout};
pub use super::layout::{Format, PICKLE_EXTENSIONS};
use crate::error::{CoreError, Result};
use crate::{gguf, safetensors};

/// Stable rule ids for checkpoint-level failures (per-file ones are in
/// [`crate::safetensors::rules`] and [`crate::gguf::rules`]).
pub mod rules {
    /// Only pickle-based weights (`.bin`, `.pt`, ...): they are never unpickled.
    pub const NOT_ATTESTABLE: &str = "not-attestable";
    /// A directory without any weight file.
    pub const NO_WEIGHTS: &str = "no-weights";
    /// The index is not the expected JSON (`{"weight_map": {name: file}}`) or too large.
    pub const INDEX_JSON: &str = "index-json";
    /// More than one `*.safetensors.index.json` in the directory.
    pub const INDEX_AMBIGUOUS: &str = "index-ambiguous";
    /// The index names a file outside the checkpoint directory.
    pub const INDEX_PATH: &str = "index-path";
    /// The index names a file that does not exist.
    pub const INDEX_MISSING_FILE: &str = "index-missing-file";
    /// A tensor lives in another file than the index says.
    pub const INDEX_WRONG_FILE: &str = "index-wrong-file";
    /// A tensor of a shard that the index does not list.
    pub const INDEX_MISSING_TENSOR: &str = "index-missing-tensor";
    /// The index lists a tensor that no shard holds.
    pub const INDEX_UNKNOWN_TENSOR: &str = "index-unknown-tensor";
    /// A `.safetensors` file in the directory that the index does not name.
    pub const INDEX_UNLISTED_FILE: &str = "index-unlisted-file";
    /// GGUF and safetensors weights in one directory.
    pub const MIXED_FORMATS: &str = "mixed-formats";
    /// Several `.gguf` files that are not the complete shards of one split model.
    pub const GGUF_AMBIGUOUS: &str = "gguf-ambiguous";
}

/// One mapped, validated weight file.
pub struct OpenFile {
    /// Path relative to the checkpoint (the file name for a single-file checkpoint).
    pub rel: String,
    pub path: PathBuf,
    pub map: Mmap,
    pub format: Format,
    /// `map[..header_len]` is the header: the length field and JSON of a safetensors
    /// file, everything before the tensor data's padding of a GGUF file.
    pub header_len: u64,
    /// GGUF only: the byte range of the metadata (KV) section.
    pub metadata: Option<Range<u64>>,
    pub tensors: u64,
    /// `fstat` of the mapped file when it was opened (the leaf cache's key), and the
    /// wall-clock time just before it, in ns since the Unix epoch.
    pub meta: std::fs::Metadata,
    pub statted_ns: i64,
}

impl OpenFile {
    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        // header_len was validated against the mapped length by the parser.
        &self.map[..self.header_len as usize]
    }

    /// GGUF only: the raw metadata (KV) section.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.metadata
            .as_ref()
            .map(|r| &self.map[r.start as usize..r.end as usize])
    }
}

/// One tensor of the checkpoint, located in its file.
pub struct TensorRef {
    pub name: String,
    /// safetensors dtype or ggml type name.
    pub dtype: &'static str,
    pub shape: Vec<u64>,
    /// Index into [`Checkpoint::files`].
    pub file: usize,
    /// Absolute byte range in the file.
    pub begin: u64,
    pub end: u64,
}

/// All files of a checkpoint, validated, with the tensors sorted by name.
pub struct Checkpoint {
    pub files: Vec<OpenFile>,
    pub tensors: Vec<TensorRef>,
    /// Pickle weight files found beside the weights (not covered by the root).
    pub unattested: Vec<String>,
}

impl Checkpoint {
    /// The raw data bytes of tensor `i`.
    pub fn data(&self, i: usize) -> &[u8] {
        let t = &self.tensors[i];
        // Ranges were validated against the mapped length when the header was parsed.
        &self.files[t.file].map[t.begin as usize..t.end as usize]
    }

    /// Index of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
    }

    /// Open and validate the checkpoint at `path`.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        let layout = Layout::resolve(path)?;
        let mut files = Vec::with_capacity(layout.files.len());
        let mut tensors = Vec::new();
        for (fi, (rel, abs, format)) in layout.files.into_iter().enumerate() {
            let (map, meta, statted_ns) = map_file(&abs)?;
            let mut add = |name: &str, dtype, shape: &[u64], begin, end| {
                tensors.push(TensorRef {
                    name: name.to_string(),
                    dtype,
                    shape: shape.to_vec(),
                    file: fi,
                    begin,
                    end,
                })
            };
            let (header_len, metadata, count) = match format {
                Format::Safetensors => {
                    let h = safetensors::parse(&abs, &map)?;
                    let base = h.data_start();
                    for t in &h.tensors {
                        add(
                            &t.name,
                            t.dtype.name(),
                            &t.shape,
                            base + t.begin,
                            base + t.end,
                        );
                    }
                    (base, None, h.tensors.len())
                }
                Format::Gguf => {
                    let h = gguf::parse(&abs, &map)?;
                    check_split(&abs, &h, fi, layout.gguf_shards)?;
                    let base = h.data_start;
                    for t in &h.tensors {
                        let ty = t.ggml_type.name;
                        add(&t.name, ty, &t.shape, base + t.begin, base + t.end);
                    }
                    (h.header_end, Some(h.kv), h.tensors.len())
                }
            };
            files.push(OpenFile {
                rel,
                path: abs,
                map,
                format,
                header_len,
                metadata,
                tensors: count as u64,
                meta,
                statted_ns,
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
            let rule = match files[w[1].file].format {
                Format::Safetensors => safetensors::rules::DUPLICATE_NAME,
                Format::Gguf => gguf::rules::DUPLICATE_NAME,
            };
            return Err(CoreError::integrity(
                &files[w[1].file].path,
                rule,
                format!("tensor {:?} is also in {}", w[1].name, files[w[0].file].rel),
            ));
        }
        let cp = Checkpoint {
            files,
            tensors,
            unattested: layout.unattested,
        };
        if let Some((index_path, weight_map)) = layout.index {
            cp.check_index(&index_path, &weight_map)?;
        }
        Ok(cp)
    }

    fn check_index(&self, index_path: &Path, weight_map: &BTreeMap<String, String>) -> Result<()> {
        for t in &self.tensors {
            let file = &self.files[t.file];
            match weight_map.get(&t.name) {
                None => {
                    return Err(CoreError::integrity(
                        &file.path,
                        rules::INDEX_MISSING_TENSOR,
                        format!("tensor {:?} is not listed in the index", t.name),
                    ))
                }
                Some(listed) if index_name(listed) != file.rel => {
                    return Err(CoreError::integrity(
                        &file.path,
                        rules::INDEX_WRONG_FILE,
                        format!(
                            "tensor {:?} is in {} but the index places it in {listed}",
                            t.name, file.rel
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if weight_map.len() != self.tensors.len() {
            let unknown = weight_map
                .keys()
                .find(|n| self.find(n).is_none())
                .cloned()
                .unwrap_or_default();
            return Err(CoreError::integrity(
                index_path,
                rules::INDEX_UNKNOWN_TENSOR,
                format!("the index lists tensor {unknown:?} that no shard holds"),
            ));
        }
        Ok(())
    }
}

/// A shard's `split.no` / `split.count` must agree with its file name (shard `fi` of
/// `shards`), and a lone file must not be one shard of several: its root would cover part
/// of a model.
fn check_split(path: &Path, h: &gguf::Header, fi: usize, shards: Option<u16>) -> Result<()> {
    let Some(split) = h.split else {
        return Ok(());
    };
    let bad = |detail: String| CoreError::integrity(path, gguf::rules::SPLIT, detail);
    match shards {
        None if split.count > 1 => Err(bad(format!(
            "shard {} of a model split in {}; attest the directory holding all of them",
            split.no + 1,
            split.count
        ))),
        Some(n) if split.count != n || usize::from(split.no) != fi => Err(bad(format!(
            "split.no = {}, split.count = {} but the file name says shard {} of {n}",
            split.no,
            split.count,
            fi + 1
        ))),
        _ => Ok(()),
    }
}

fn map_file(path: &Path) -> Result<(Mmap, std::fs::Metadata, i64)> {
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let statted_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(i64::MAX);
    let meta = file.metadata().map_err(|e| CoreError::io(path, e))?;
    // SAFETY: the map is read-only and private to this process. Undefined behaviour
    // would need another process to truncate or rewrite the file while it is mapped; a
    // checkpoint being attested is expected to be at rest, and a concurrent writer could
    // equally change the bytes between any read and its use. Truncation would raise
    // SIGBUS rather than corrupt memory silently. Mapping is what lets a 100 GB checkpoint
    // be hashed without copying and one tensor be checked without reading the rest.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| CoreError::io(path, e))?;
    Ok((map, meta, statted_ns))
}
