//! Which files a checkpoint path stands for: one `.safetensors` or `.gguf` file, a directory
//! of safetensors files (with or without a `*.safetensors.index.json`), a directory with
//! one `.gguf` file, or the complete shards of one split GGUF model
//! (`<name>-00001-of-0000N.gguf`, as llama.cpp's gguf-split and gguf-py's GGUFWriter name
//! them). Nothing is parsed here beyond the safetensors index.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use super::checkpoint::rules;
use crate::error::{CoreError, Result};

/// File extensions of pickle-based weights, reported and never opened.
pub const PICKLE_EXTENSIONS: [&str; 6] = ["bin", "pt", "pth", "ckpt", "pkl", "pickle"];
const INDEX_SUFFIX: &str = ".safetensors.index.json";
const MAX_INDEX_LEN: u64 = 100_000_000;

/// The two weight formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Safetensors,
    Gguf,
}

/// The files a checkpoint path stands for.
pub(crate) struct Layout {
    /// (path relative to the checkpoint, absolute path, format).
    pub files: Vec<(String, PathBuf, Format)>,
    pub index: Option<(PathBuf, BTreeMap<String, String>)>,
    /// For a split GGUF model: the shard count its file names give.
    pub gguf_shards: Option<u16>,
    pub unattested: Vec<String>,
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
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

fn normalize(p: &str) -> String {
    p.trim_start_matches("./").to_string()
}

/// `(prefix, shard number, shard count)` of a `<prefix>-%05d-of-%05d.gguf` name.
fn split_name(name: &str) -> Option<(&str, u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(no) || !digits(count) {
        return None;
    }
    Some((prefix, no.parse().ok()?, count.parse().ok()?))
}

impl Layout {
    pub fn resolve(path: &Path) -> Result<Layout> {
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
            let format = if has_ext(path, "gguf") {
                Format::Gguf
            } else {
                Format::Safetensors
            };
            return Ok(Layout {
                files: vec![(name, path.to_path_buf(), format)],
                index: None,
                gguf_shards: None,
                unattested: Vec::new(),
            });
        }
        let mut safetensors_files = Vec::new();
        let mut gguf_files = Vec::new();
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
            } else if has_ext(&p, "gguf") {
                gguf_files.push((name, p));
            } else if is_pickle(&p) {
                pickles.push(name);
            }
        }
        pickles.sort();
        safetensors_files.sort();
        gguf_files.sort();
        if !gguf_files.is_empty() {
            if !safetensors_files.is_empty() || !indexes.is_empty() {
                return Err(CoreError::integrity(
                    path,
                    rules::MIXED_FORMATS,
                    format!(
                        "{} and {} in one checkpoint: which one is the model?",
                        gguf_files[0].0,
                        safetensors_files
                            .first()
                            .map(|f| f.0.clone())
                            .unwrap_or_else(|| file_name(&indexes[0]))
                    ),
                ));
            }
            return Layout::gguf_dir(path, gguf_files, pickles);
        }
        match indexes.len() {
            0 => {}
            1 => {
                let layout = Layout::from_index(path, &indexes[0], pickles)?;
                if let Some((name, p)) = safetensors_files
                    .iter()
                    .find(|(n, _)| !layout.files.iter().any(|(r, _, _)| r == n))
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
                "no .safetensors or .gguf file in the directory",
            ));
        }
        Ok(Layout {
            files: with_format(safetensors_files, Format::Safetensors),
            index: None,
            gguf_shards: None,
            unattested: pickles,
        })
    }

    /// One `.gguf` file, or every shard of one split model and nothing else.
    fn gguf_dir(
        dir: &Path,
        files: Vec<(String, PathBuf)>,
        unattested: Vec<String>,
    ) -> Result<Layout> {
        let mut gguf_shards = None;
        if files.len() > 1 {
            let parsed: Vec<_> = files.iter().map(|(n, _)| split_name(n)).collect();
            let complete = parsed
                .iter()
                .enumerate()
                .all(|(i, s)| match (s, parsed[0]) {
                    (Some((prefix, no, count)), Some((prefix0, _, count0))) => {
                        *prefix == prefix0
                            && *count == count0
                            && *no as usize == i + 1
                            && count0 as usize == files.len()
                    }
                    _ => false,
                });
            if !complete {
                let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CoreError::integrity(
                    dir,
                    rules::GGUF_AMBIGUOUS,
                    format!(
                        "{} .gguf files ({}) that are not the complete shards of one split \
                         model; attest one file at a time",
                        files.len(),
                        names.join(", ")
                    ),
                ));
            }
            // count <= 99999 and equal to the file count, which is > 1.
            gguf_shards = Some(u16::try_from(files.len()).map_err(|_| {
                CoreError::integrity(dir, rules::GGUF_AMBIGUOUS, "more than 65535 shards")
            })?);
        }
        Ok(Layout {
            files: with_format(files, Format::Gguf),
            index: None,
            gguf_shards,
            unattested,
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
            out.push((rel, abs, Format::Safetensors));
        }
        Ok(Layout {
            files: out,
            index: Some((index.to_path_buf(), weight_map)),
            gguf_shards: None,
            unattested,
        })
    }
}

fn with_format(files: Vec<(String, PathBuf)>, f: Format) -> Vec<(String, PathBuf, Format)> {
    files.into_iter().map(|(n, p)| (n, p, f)).collect()
}

/// The index's name for a file, compared with the relative path of a shard.
pub(crate) fn index_name(p: &str) -> String {
    normalize(p)
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

#[cfg(test)]
mod tests {
    use super::split_name;

    #[test]
    fn split_names_are_the_gguf_split_ones() {
        assert_eq!(
            split_name("model-00002-of-00003.gguf"),
            Some(("model", 2, 3))
        );
        assert_eq!(
            split_name("Llama-3-8B-Q4_K-00001-of-00010.gguf"),
            Some(("Llama-3-8B-Q4_K", 1, 10))
        );
        assert_eq!(split_name("model-2-of-3.gguf"), None);
        assert_eq!(split_name("model.gguf"), None);
        assert_eq!(split_name("model-00001-of-00002.safetensors"), None);
    }
}
