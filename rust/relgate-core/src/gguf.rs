//! GGUF (llama.cpp, Ollama) header parsing and validation that trusts nothing in the file.
//!
//! Layout (little-endian, versions 2 and 3): magic `GGUF`, u32 version, u64 tensor count,
//! u64 metadata (KV) count, the KV pairs (u64-length-prefixed key, u32 value type, value;
//! arrays are u32 element type + u64 count + elements), the tensor infos (name, u32 n_dims,
//! n_dims x u64 dims, u32 ggml type, u64 offset), then the data section, which starts at
//! the end of the tensor infos rounded up to the alignment (`general.alignment`, a u32
//! power of two, default 32). Offsets are relative to the data section.
//!
//! What is checked, before anything is used: the magic and version (v1, which has 32-bit
//! counts, and a big-endian file, are refused with their own rules); the counts against
//! hard caps and against the bytes the file really has; every string and array length
//! against the bytes remaining (nothing is allocated from a claimed size); value types are
//! the 13 of the spec and arrays nest at most [`MAX_ARRAY_DEPTH`] deep; keys are unique,
//! non-empty UTF-8; tensor names unique, non-empty UTF-8 without NUL, at most
//! [`MAX_NAME_LEN`] bytes; 1 to 4 dims, each at least 1; a current ggml type (see
//! [`types`]); ne\[0\] a multiple of the type's block size; the byte size computed with
//! checked arithmetic; offsets aligned; every tensor inside the data section and none
//! overlapping; and no byte unexplained: between the header and the data section, between
//! tensors (by offset) and after the last one there may only be padding shorter than the
//! alignment, and padding must be zero, so the file carries nothing the attestation does
//! not cover. That is exactly what gguf-py's `GGUFWriter` and llama.cpp's writer produce.
//!
//! The attestation records, per tensor, the gguf-py type name (`Q4_K`, `F32`, ...) as
//! `dtype` and the dims in GGUF order, ne\[0\] first, as `gguf-dump` and gguf-py's reader
//! print them (the reverse of the numpy/PyTorch order): GGUF files are attested as they
//! are, not as some converter would reshape them.
//!
//! Each failure is a [`CoreError::Integrity`] whose `rule` is one of the stable ids in
//! [`rules`].

mod reader;
pub mod rules;
pub mod types;

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use reader::Reader;
pub use types::{ggml_type, ggml_type_by_name, GgmlType, GGML_TYPES};

use crate::error::{CoreError, Result};

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Tensor and KV counts above these are refused whatever the file size.
pub const MAX_TENSORS: u64 = 1_000_000;
pub const MAX_KV: u64 = 1_000_000;
/// Upper bound on everything before the data section. The vocabulary dominates a real
/// header: SmolLM2's (49k tokens and merges) is 1.8 MB, so this leaves room for
/// vocabularies a hundred times larger.
pub const MAX_HEADER_LEN: u64 = 256 << 20;
/// GGUF's limit on a tensor name. (llama.cpp keeps a NUL in its 64-byte `GGML_MAX_NAME`
/// buffer and so loads names of at most 63 bytes; 64 is the spec's limit.)
pub const MAX_NAME_LEN: usize = 64;
/// ggml tensors have at most 4 dims (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal in the spec (llama.cpp itself refuses them); deeper nesting
/// than this is refused so hostile input cannot recurse without bound.
pub const MAX_ARRAY_DEPTH: u32 = 3;
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Dims above 2^53 - 1 cannot be written exactly as JSON numbers in RFC 8785 form.
pub const MAX_DIM: u64 = crate::safetensors::MAX_DIM;

/// Smallest possible encodings, to bound the counts by the file size.
const MIN_TENSOR_INFO: u64 = 8 + 1 + 4 + 8 + 4 + 8;
const MIN_KV: u64 = 8 + 1 + 4 + 1;

/// GGUF value types (the spec's `gguf_metadata_value_type`).
mod value {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;

    /// Size of a fixed-size value; `None` for strings and arrays (and unknown types).
    pub fn fixed_size(t: u32) -> Option<u64> {
        match t {
            U8 | I8 | BOOL => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            _ => None,
        }
    }

    /// The fewest bytes one element of type `t` takes (to bound array counts).
    pub fn min_size(t: u32) -> Option<u64> {
        match t {
            STRING => Some(8),
            ARRAY => Some(4 + 8),
            _ => fixed_size(t),
        }
    }
}

/// One validated tensor. `begin..end` is relative to the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub ggml_type: &'static GgmlType,
    /// Dims in GGUF order (ne\[0\] first).
    pub shape: Vec<u64>,
    pub begin: u64,
    pub end: u64,
}

impl TensorInfo {
    pub fn len(&self) -> u64 {
        self.end - self.begin
    }

    pub fn is_empty(&self) -> bool {
        self.begin == self.end
    }
}

/// `split.no` and `split.count` of one shard of a split model (gguf-split, GGUFWriter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// 0-based shard number.
    pub no: u16,
    pub count: u16,
}

/// A validated GGUF header: tensors sorted by their position in the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub alignment: u64,
    /// Byte range of the KV section (the model's metadata: tokenizer, chat template...).
    pub kv: Range<u64>,
    /// End of the tensor infos: the bytes `0..header_end` are the header.
    pub header_end: u64,
    /// Offset of the data section in the file (`header_end` rounded up to the alignment).
    pub data_start: u64,
    pub split: Option<Split>,
    pub tensors: Vec<TensorInfo>,
}

/// What the KV section says that the layout depends on.
struct Kv {
    alignment: Option<u32>,
    split_no: Option<u16>,
    split_count: Option<u16>,
}

/// Skip one value of type `t`, checking lengths, types and nesting.
fn skip_value(r: &mut Reader, t: u32, depth: u32, key: &str) -> Result<()> {
    let what = || format!("value of {key:?}");
    if let Some(n) = value::fixed_size(t) {
        return r.skip(n, &what);
    }
    match t {
        value::STRING => r.string(&what).map(|_| ()),
        value::ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(r.fail(
                    rules::ARRAY_DEPTH,
                    format!("{key:?}: arrays nested more than {MAX_ARRAY_DEPTH} deep"),
                ));
            }
            let elem = r.u32(&|| format!("array element type of {key:?}"))?;
            let n = r.u64(&|| format!("array length of {key:?}"))?;
            let min = value::min_size(elem).ok_or_else(|| {
                r.fail(
                    rules::VALUE_TYPE,
                    format!("{key:?}: unknown array element type {elem}"),
                )
            })?;
            // n * min <= remaining, without overflow: every element needs `min` bytes.
            if n > r.remaining() / min {
                return Err(r.fail(
                    rules::ARRAY_LENGTH,
                    format!(
                        "{key:?}: {n} elements of at least {min} bytes, {} bytes left",
                        r.remaining()
                    ),
                ));
            }
            if let Some(size) = value::fixed_size(elem) {
                return r.skip(n * size, &what);
            }
            // Strings and arrays: one at a time; each consumes at least `min` bytes, so
            // this loop is bounded by the bytes really present.
            for _ in 0..n {
                skip_value(r, elem, depth + 1, key)?;
            }
            Ok(())
        }
        other => Err(r.fail(
            rules::VALUE_TYPE,
            format!("{key:?}: unknown value type {other}"),
        )),
    }
}

fn read_kv(r: &mut Reader, count: u64) -> Result<Kv> {
    let mut kv = Kv {
        alignment: None,
        split_no: None,
        split_count: None,
    };
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for i in 0..count {
        let raw = r.string(&|| format!("key {i}"))?;
        let key = std::str::from_utf8(raw)
            .map_err(|_| r.fail(rules::KEY, format!("key {i} is not UTF-8")))?;
        if key.is_empty() {
            return Err(r.fail(rules::KEY, format!("key {i} is empty")));
        }
        if !seen.insert(raw) {
            // Two readers could each take a different one of the two values.
            return Err(r.fail(rules::DUPLICATE_KEY, format!("key {key:?} appears twice")));
        }
        let t = r.u32(&|| format!("value type of {key:?}"))?;
        let wrong = |want: &str| {
            let msg = format!("{key:?} must be a {want}, has value type {t}");
            if key == "general.alignment" {
                r.fail(rules::ALIGNMENT, msg)
            } else {
                r.fail(rules::SPLIT, msg)
            }
        };
        match key {
            "general.alignment" if t != value::U32 => return Err(wrong("u32")),
            "general.alignment" => kv.alignment = Some(r.u32(&|| format!("{key:?}"))?),
            "split.no" if t != value::U16 => return Err(wrong("u16")),
            "split.no" => kv.split_no = Some(r.u16(&|| format!("{key:?}"))?),
            "split.count" if t != value::U16 => return Err(wrong("u16")),
            "split.count" => kv.split_count = Some(r.u16(&|| format!("{key:?}"))?),
            _ => skip_value(r, t, 0, key)?,
        }
    }
    Ok(kv)
}

fn read_tensor_info(
    r: &mut Reader,
    i: u64,
    alignment: u64,
    names: &mut HashSet<String>,
) -> Result<(TensorInfo, u64)> {
    let raw = r.string(&|| format!("tensor {i} name"))?;
    let bad_name = |why: &str| r.fail(rules::TENSOR_NAME, format!("tensor {i}: name {why}"));
    let name = std::str::from_utf8(raw).map_err(|_| bad_name("is not UTF-8"))?;
    if name.is_empty() {
        return Err(bad_name("is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad_name(&format!(
            "is {} bytes, over {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name.contains('\0') {
        // llama.cpp copies names as C strings: "a\0x" and "a\0y" would be one name there.
        return Err(bad_name("holds a NUL byte"));
    }
    if !names.insert(name.to_string()) {
        return Err(r.fail(
            rules::DUPLICATE_NAME,
            format!("tensor {name:?} appears twice in the header"),
        ));
    }
    let what = |field: &'static str| move || format!("tensor {name:?} {field}");
    let n_dims = r.u32(&what("n_dims"))?;
    if !(1..=MAX_DIMS).contains(&n_dims) {
        return Err(r.fail(
            rules::N_DIMS,
            format!("tensor {name:?}: {n_dims} dims, not 1 to {MAX_DIMS}"),
        ));
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        let d = r.u64(&what("dim"))?;
        if d == 0 || d > MAX_DIM {
            return Err(r.fail(
                rules::DIM,
                format!("tensor {name:?}: dim {d} is not in 1..=2^53-1"),
            ));
        }
        shape.push(d);
    }
    let type_id = r.u32(&what("type"))?;
    let ty = ggml_type(type_id).ok_or_else(|| {
        r.fail(
            rules::UNKNOWN_TYPE,
            format!("tensor {name:?}: ggml type {type_id} is unknown, deprecated or removed"),
        )
    })?;
    if shape[0] % ty.block_size != 0 {
        return Err(r.fail(
            rules::BLOCK_SIZE,
            format!(
                "tensor {name:?}: ne[0] = {} is not a multiple of the {} block size {}",
                shape[0], ty.name, ty.block_size
            ),
        ));
    }
    let overflow = || {
        r.fail(
            rules::SHAPE_OVERFLOW,
            format!("tensor {name:?}: shape {shape:?} of {} overflows", ty.name),
        )
    };
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n < 1 << 63) // llama.cpp counts elements in an int64
        .ok_or_else(overflow)?;
    let bytes = (elements / ty.block_size)
        .checked_mul(ty.type_size)
        .ok_or_else(overflow)?;
    let offset = r.u64(&what("offset"))?;
    if offset % alignment != 0 {
        return Err(r.fail(
            rules::OFFSET_ALIGNMENT,
            format!("tensor {name:?}: offset {offset} is not a multiple of {alignment}"),
        ));
    }
    let info = TensorInfo {
        name: name.to_string(),
        ggml_type: ty,
        shape,
        begin: offset,
        end: 0,
    };
    Ok((info, bytes))
}

/// Parse and validate the header of a GGUF file given its full contents.
///
/// `path` only names the file in errors. `file` is the whole file (typically a memory
/// map); the header is read, and the padding bytes are checked to be zero, but no tensor
/// data is touched.
pub fn parse(path: &Path, file: &[u8]) -> Result<Header> {
    let mut r = Reader::new(path, file);
    let magic = r.bytes(4, &|| "magic".to_string())?;
    if magic != MAGIC {
        return Err(r.fail(
            rules::MAGIC,
            format!("starts with {magic:02x?}, not \"GGUF\""),
        ));
    }
    let version = r.u32(&|| "version".to_string())?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(r.fail(
                rules::V1,
                "GGUF v1 (32-bit counts) is not supported; convert to v3",
            ))
        }
        v if v != 0 && v & 0xffff == 0 => {
            return Err(r.fail(
                rules::BIG_ENDIAN,
                format!(
                    "version field reads {v:#010x}: a big-endian GGUF (version {}), refused",
                    v.swap_bytes()
                ),
            ))
        }
        v => return Err(r.fail(rules::VERSION, format!("version {v} (expected 2 or 3)"))),
    }
    let n_tensors = r.u64(&|| "tensor count".to_string())?;
    let n_kv = r.u64(&|| "KV count".to_string())?;
    let room = r.remaining();
    if n_tensors > MAX_TENSORS || n_tensors > room / MIN_TENSOR_INFO {
        return Err(r.fail(
            rules::TENSOR_COUNT,
            format!(
                "{n_tensors} tensors: over the {MAX_TENSORS} cap or more than {room} bytes \
                 can describe"
            ),
        ));
    }
    // Both counts together must fit: MIN_TENSOR_INFO * n_tensors + MIN_KV * n_kv <= room.
    if n_kv > MAX_KV || n_kv > (room - n_tensors * MIN_TENSOR_INFO) / MIN_KV {
        return Err(r.fail(
            rules::KV_COUNT,
            format!("{n_kv} KV pairs: over the {MAX_KV} cap or more than the file can hold"),
        ));
    }
    let kv_start = r.pos as u64;
    let kv = read_kv(&mut r, n_kv)?;
    let kv_end = r.pos as u64;
    let alignment = match kv.alignment {
        None => DEFAULT_ALIGNMENT,
        Some(a) if a.is_power_of_two() => u64::from(a),
        Some(a) => {
            return Err(r.fail(
                rules::ALIGNMENT,
                format!("general.alignment = {a} is not a power of two"),
            ))
        }
    };
    let split = match (kv.split_no, kv.split_count) {
        (None, None) => None,
        (Some(no), Some(count)) if count >= 1 && no < count => Some(Split { no, count }),
        (no, count) => {
            return Err(r.fail(
                rules::SPLIT,
                format!("split.no = {no:?}, split.count = {count:?}"),
            ))
        }
    };

    let mut names = HashSet::new();
    let mut tensors = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..n_tensors {
        let (info, bytes) = read_tensor_info(&mut r, i, alignment, &mut names)?;
        tensors.push(info);
        sizes.push(bytes);
    }
    let header_end = r.pos as u64;
    // header_end <= 256 MiB and alignment <= 2^31: no overflow.
    let data_start = header_end.div_ceil(alignment) * alignment;
    let file_len = file.len() as u64;
    let data_len = file_len.saturating_sub(data_start);
    for (t, bytes) in tensors.iter_mut().zip(sizes) {
        match t.begin.checked_add(bytes) {
            Some(end) if end <= data_len => t.end = end,
            _ => {
                return Err(r.fail(
                    rules::OUT_OF_BOUNDS,
                    format!(
                        "tensor {:?}: {bytes} bytes at offset {} run past the {data_len}-byte \
                         data section",
                        t.name, t.begin
                    ),
                ))
            }
        }
    }
    let header = Header {
        version,
        alignment,
        kv: kv_start..kv_end,
        header_end,
        data_start,
        split,
        tensors,
    };
    check_layout(path, file, header)
}

/// Sort by position; require no overlap and only zero padding shorter than the alignment
/// around the tensors.
fn check_layout(path: &Path, file: &[u8], mut h: Header) -> Result<Header> {
    let fail = |rule, detail: String| CoreError::integrity(path, rule, detail);
    let zero = |range: Range<u64>, what: &str| -> Result<()> {
        // Callers pass ranges inside the file.
        let bytes = &file[range.start as usize..range.end as usize];
        match bytes.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(i) => Err(fail(
                rules::PADDING,
                format!(
                    "padding byte at {} ({what}) is {:#04x}, not zero",
                    range.start + i as u64,
                    bytes[i]
                ),
            )),
        }
    };
    let file_len = file.len() as u64;
    zero(
        h.header_end..h.data_start.min(file_len),
        "before the data section",
    )?;
    let data_len = file_len.saturating_sub(h.data_start);
    h.tensors.sort_by_key(|t| (t.begin, t.end));
    let mut pos = 0u64;
    let mut prev: Option<&str> = None;
    for t in &h.tensors {
        if t.begin < pos {
            return Err(fail(
                rules::OVERLAP,
                format!(
                    "tensor {:?} [{}, {}) overlaps tensor {:?} ending at {pos}",
                    t.name,
                    t.begin,
                    t.end,
                    prev.unwrap_or_default()
                ),
            ));
        }
        if t.begin - pos >= h.alignment {
            return Err(fail(
                rules::GAP,
                format!(
                    "bytes [{pos}, {}) of the data section belong to no tensor (before {:?})",
                    t.begin, t.name
                ),
            ));
        }
        zero(
            h.data_start + pos..h.data_start + t.begin,
            &format!("before tensor {:?}", t.name),
        )?;
        pos = t.end;
        prev = Some(&t.name);
    }
    if data_len - pos >= h.alignment {
        return Err(fail(
            rules::TRAILING_BYTES,
            format!(
                "{} bytes after the last tensor (data section {data_len} bytes, tensors end \
                 at {pos}, alignment {})",
                data_len - pos,
                h.alignment
            ),
        ));
    }
    if data_len > 0 {
        zero(h.data_start + pos..file_len, "after the last tensor")?;
    }
    Ok(h)
}

#[cfg(test)]
mod tests;
