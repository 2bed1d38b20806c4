//! Finding and opening the files of a checkpoint: one `.safetensors` file, a directory of
//! them, or a sharded checkpoint with a `*.safetensors.index.json`. Every header is
//! validated, names must be unique across shards and the index must agree with the shards.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use memmap2::Mmap;

use crate::error::{CoreError, Result};
use crate::safetensors::{self, Dtype, Header};

/// Stable rule ids for checkpoint-level failures (per-file ones are in
/// [`crate::safetensors::rules`]).
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
}

/// File extensions of pickle-based weights, reported and never opened.
pub const PICKLE_EXTENSIONS: [&str; 6] = ["bin", "pt", "pth", "ckpt", "pkl", "pickle"];
const INDEX_SUFFIX: &str = ".safetensors.index.json";
const MAX_INDEX_LEN: u64 = 100_000_000;

/// One mapped, validated weight file.
pub struct OpenFile {
    /// Path relative to the checkpoint (the file name for a single-file checkpoint).
    pub rel: String,
    pub path: PathBuf,
    pub map: Mmap,
    pub header: Header,
}

/// One tensor of the checkpoint, located in its file.
pub struct TensorRef {
    pub name: String,
    pub dtype: Dtype,
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
    /// Pickle weight files found beside the safetensors ones (not covered by the root).
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
        for (rel, abs) in layout.files {
            let map = map_file(&abs)?;
            let header = safetensors::parse(&abs, &map)?;
            files.push(OpenFile {
                rel,
                path: abs,
                map,
                header,
            });
        }
        let mut tensors = Vec::new();
        for (fi, f) in files.iter().enumerate() {
            let base = f.header.data_start();
            for t in &f.header.tensors {
                tensors.push(TensorRef {
                    name: t.name.clone(),
                    dtype: t.dtype,
                    shape: t.shape.clone(),
                    file: fi,
                    begin: base + t.begin,
                    end: base + t.end,
                });
            }
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(CoreError::integrity(
                &files[w[1].file].path,
                safetensors::rules::DUPLICATE_NAME,
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
                Some(listed) if normalize(listed) != file.rel => {
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

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    // SAFETY: the map is read-only and private to this process. Undefined behaviour
    // would need another process to truncate or rewrite the file while it is mapped; a
    // checkpoint being attested is expected to be at rest, and a concurrent writer could
    // equally change the bytes between any read and its use. Truncation would raise
    // SIGBUS rather than corrupt memory silently. Mapping is what lets a 100 GB checkpoint
    // be hashed without copying and one tensor be checked without reading the rest.
    unsafe { Mmap::map(&file) }.map_err(|e| CoreError::io(path, e))
}

fn normalize(p: &str) -> String {
    p.trim_start_matches("./").to_string()
}

fn is_pickle(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICKLE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The files a checkpoint path stands for.
struct Layout {
    files: Vec<(String, PathBuf)>,
    index: Option<(PathBuf, BTreeMap<String, String>)>,
    unattested: Vec<String>,
}

impl Layout {
    fn resolve(path: &Path) -> Result<Layout> {
        let meta = std::fs::metadata(path).map_err(|e| CoreError::io(path, e))?;
        if meta.is_file() {
            let name = file_name(path);
            if is_pickle(path) {
                return Err(not_attestable(path, &[name]));
            }
            if name.ends_with(INDEX_SUFFIX) {
                let dir = path.parent().unwrap_or(Path::new("."));
                return Layout::from_index(dir, path, Vec::new());
            }
            return Ok(Layout {
                files: vec![(name, path.to_path_buf())],
                index: None,
                unattested: Vec::new(),
            });
        }
        let mut safetensors_files = Vec::new();
        let mut indexes = Vec::new();
        let mut pickles = Vec::new();
        let entries = std::fs::read_dir(path).map_err(|e| CoreError::io(path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CoreError::io(path, e))?;
            let p = entry.path();
            if !p.is_file() {
                continue;
            }
            let name = file_name(&p);
            if name.ends_with(INDEX_SUFFIX) {
                indexes.push(p);
            } else if name.ends_with(".safetensors") {
                safetensors_files.push((name, p));
            } else if is_pickle(&p) {
                pickles.push(name);
            }
        }
        pickles.sort();
        safetensors_files.sort();
        match indexes.len() {
            0 => {}
            1 => {
                let layout = Layout::from_index(path, &indexes[0], pickles)?;
                if let Some((name, p)) = safetensors_files
                    .iter()
                    .find(|(n, _)| !layout.files.iter().any(|(r, _)| r == n))
                {
                    return Err(CoreError::integrity(
                        p,
                        rules::INDEX_UNLISTED_FILE,
                        format!("{name} is in the checkpoint directory but not in the index"),
                    ));
                }
                return Ok(layout);
            }
            _ => {
                return Err(CoreError::integrity(
                    path,
                    rules::INDEX_AMBIGUOUS,
                    format!("{} *{INDEX_SUFFIX} files", indexes.len()),
                ))
            }
        }
        if safetensors_files.is_empty() {
            if !pickles.is_empty() {
                return Err(not_attestable(path, &pickles));
            }
            return Err(CoreError::integrity(
                path,
                rules::NO_WEIGHTS,
                "no .safetensors file in the directory",
            ));
        }
        Ok(Layout {
            files: safetensors_files,
            index: None,
            unattested: pickles,
        })
    }

    fn from_index(dir: &Path, index: &Path, unattested: Vec<String>) -> Result<Layout> {
        let bad = |detail: String| CoreError::integrity(index, rules::INDEX_JSON, detail);
        let len = std::fs::metadata(index)
            .map_err(|e| CoreError::io(index, e))?
            .len();
        if len > MAX_INDEX_LEN {
            return Err(bad(format!(
                "{len} bytes, over the {MAX_INDEX_LEN}-byte limit"
            )));
        }
        let text = std::fs::read(index).map_err(|e| CoreError::io(index, e))?;
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: HashMap<String, String>,
        }
        let parsed: Index = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let weight_map: BTreeMap<String, String> = parsed.weight_map.into_iter().collect();
        let mut files: Vec<String> = weight_map.values().map(|f| normalize(f)).collect();
        files.sort();
        files.dedup();
        let mut out = Vec::with_capacity(files.len());
        for rel in files {
            let rp = Path::new(&rel);
            if rel.is_empty() || !rp.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(CoreError::integrity(
                    index,
                    rules::INDEX_PATH,
                    format!("the index names {rel:?}, which is not a plain relative path"),
                ));
            }
            let abs = dir.join(rp);
            if !abs.is_file() {
                return Err(CoreError::integrity(
                    index,
                    rules::INDEX_MISSING_FILE,
                    format!("the index names {rel}, which does not exist"),
                ));
            }
            out.push((rel, abs));
        }
        Ok(Layout {
            files: out,
            index: Some((index.to_path_buf(), weight_map)),
            unattested,
        })
    }
}

fn not_attestable(path: &Path, names: &[String]) -> CoreError {
    CoreError::integrity(
        path,
        rules::NOT_ATTESTABLE,
        format!(
            "pickle weights ({}) are not attestable at tensor level and are never unpickled; \
             convert them to safetensors",
            names.join(", ")
        ),
    )
}
