//! safetensors header parsing and validation that trusts nothing in the file.
//!
//! Layout: 8-byte little-endian header length `n`, `n` bytes of UTF-8 JSON (an object of
//! tensor name -> `{"dtype", "shape", "data_offsets"}` plus an optional `__metadata__`
//! string map), then the data section. Offsets are relative to the data section.
//!
//! Every claim of the header is checked against the bytes actually present before it is
//! used: the header length against a fixed bound and the file size, each shape x dtype
//! size with checked arithmetic against its byte range, each range against the data
//! section, and the ranges together must tile the data section exactly (no gap, no
//! overlap, no trailing bytes). Nothing is allocated from a size the file claims; the
//! parser only allocates in proportion to the header bytes it really reads.
//!
//! Each failure is a [`CoreError::Integrity`] whose `rule` is one of the stable ids in
//! [`rules`].

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::{CoreError, Result};

/// Upper bound on the JSON header (safetensors itself uses 100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// Shape dimensions above 2^53 - 1 are refused: they cannot be written exactly as JSON
/// numbers in RFC 8785 canonical form, which the attestation leaf uses.
pub const MAX_DIM: u64 = (1 << 53) - 1;

/// Stable rule identifiers of validation failures.
pub mod rules {
    /// The file is shorter than the 8-byte header length.
    pub const FILE_TOO_SMALL: &str = "file-too-small";
    /// The header length exceeds [`super::MAX_HEADER_LEN`] or the file.
    pub const HEADER_LENGTH: &str = "header-length";
    /// The header is not UTF-8.
    pub const HEADER_UTF8: &str = "header-utf8";
    /// The header is not well-formed JSON.
    pub const HEADER_JSON: &str = "header-json";
    /// The header JSON is not an object.
    pub const HEADER_NOT_OBJECT: &str = "header-not-object";
    /// A tensor entry lacks a field, has an unknown one or a value of the wrong type.
    pub const HEADER_ENTRY: &str = "header-entry";
    /// `__metadata__` is not an object of strings.
    pub const METADATA: &str = "metadata";
    /// The same tensor name twice (in one header or across shards).
    pub const DUPLICATE_NAME: &str = "duplicate-name";
    /// A dtype safetensors does not define.
    pub const UNKNOWN_DTYPE: &str = "unknown-dtype";
    /// The element count or byte size overflows 64 bits, or a dimension exceeds 2^53 - 1.
    pub const SHAPE_OVERFLOW: &str = "shape-overflow";
    /// A sub-byte dtype whose elements do not fill whole bytes.
    pub const SUB_BYTE_ALIGNMENT: &str = "sub-byte-alignment";
    /// shape x dtype size differs from the byte range.
    pub const SIZE_MISMATCH: &str = "size-mismatch";
    /// `data_offsets` with begin > end.
    pub const OFFSETS_ORDER: &str = "offsets-order";
    /// A byte range that ends past the data section.
    pub const OFFSETS_OUT_OF_BOUNDS: &str = "offsets-out-of-bounds";
    /// Two byte ranges overlap.
    pub const OVERLAP: &str = "overlap";
    /// Bytes of the data section that no tensor covers (between or before tensors).
    pub const GAP: &str = "gap";
    /// Bytes after the last tensor.
    pub const TRAILING_BYTES: &str = "trailing-bytes";
}

/// The dtypes of the safetensors format, with their element size in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum Dtype {
    BOOL,
    F4,
    F6_E2M3,
    F6_E3M2,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F8_E4M3FNUZ,
    F8_E5M2FNUZ,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl Dtype {
    pub const ALL: [Dtype; 22] = [
        Dtype::BOOL,
        Dtype::F4,
        Dtype::F6_E2M3,
        Dtype::F6_E3M2,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::F8_E8M0,
        Dtype::F8_E4M3FNUZ,
        Dtype::F8_E5M2FNUZ,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::C64,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::F4 => "F4",
            Dtype::F6_E2M3 => "F6_E2M3",
            Dtype::F6_E3M2 => "F6_E3M2",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::F8_E8M0 => "F8_E8M0",
            Dtype::F8_E4M3FNUZ => "F8_E4M3FNUZ",
            Dtype::F8_E5M2FNUZ => "F8_E5M2FNUZ",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::C64 => "C64",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Element size in bits (F4 packs two elements per byte, F6 four per three bytes).
    pub fn bits(self) -> u64 {
        match self {
            Dtype::F4 => 4,
            Dtype::F6_E2M3 | Dtype::F6_E3M2 => 6,
            Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::F8_E5M2
            | Dtype::F8_E4M3
            | Dtype::F8_E8M0
            | Dtype::F8_E4M3FNUZ
            | Dtype::F8_E5M2FNUZ => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::C64 | Dtype::F64 | Dtype::I64 | Dtype::U64 => 64,
        }
    }
}

/// One validated tensor of a header. `begin..end` is relative to the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub begin: u64,
    pub end: u64,
}

impl TensorEntry {
    pub fn len(&self) -> u64 {
        self.end - self.begin
    }

    pub fn is_empty(&self) -> bool {
        self.begin == self.end
    }
}

/// A validated header: tensors sorted by their position in the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the JSON header in bytes.
    pub header_len: u64,
    pub tensors: Vec<TensorEntry>,
    pub metadata: Vec<(String, String)>,
}

impl Header {
    /// Offset of the data section in the file.
    pub fn data_start(&self) -> u64 {
        8 + self.header_len
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Where the JSON visitor was when serde reported a data error, to name the rule.
#[derive(Default)]
struct Cursor {
    in_metadata: bool,
    key: String,
}

struct HeaderVisitor<'c> {
    cursor: &'c RefCell<Cursor>,
}

type RawItems = (
    Vec<(String, RawEntry)>,
    Vec<(String, String)>,
    Option<String>,
);

impl<'de> Visitor<'de> for HeaderVisitor<'_> {
    type Value = RawItems;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of tensor entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawItems, A::Error> {
        let mut entries = Vec::new();
        let mut metadata = Vec::new();
        let mut seen_metadata = false;
        let mut names = HashSet::new();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                self.cursor.borrow_mut().in_metadata = true;
                if seen_metadata {
                    return Err(de::Error::custom("__metadata__ appears twice"));
                }
                seen_metadata = true;
                let m: std::collections::BTreeMap<String, String> = map.next_value()?;
                metadata.extend(m);
                self.cursor.borrow_mut().in_metadata = false;
            } else {
                self.cursor.borrow_mut().key.clone_from(&key);
                let entry: RawEntry = map.next_value()?;
                if !names.insert(key.clone()) && duplicate.is_none() {
                    duplicate = Some(key.clone());
                }
                entries.push((key, entry));
            }
        }
        Ok((entries, metadata, duplicate))
    }
}

/// Parse and validate the header of a safetensors file given its full contents.
///
/// `path` only names the file in errors. `file` is the whole file (typically a memory
/// map); only the first `8 + header_len` bytes are read here.
pub fn parse(path: &Path, file: &[u8]) -> Result<Header> {
    let fail = |rule, detail: String| CoreError::integrity(path, rule, detail);
    let file_len = file.len() as u64;
    let Some(len_bytes) = file.get(..8) else {
        return Err(fail(
            rules::FILE_TOO_SMALL,
            format!("{file_len} bytes, fewer than the 8-byte header length"),
        ));
    };
    let header_len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_LEN {
        return Err(fail(
            rules::HEADER_LENGTH,
            format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"),
        ));
    }
    if header_len > file_len - 8 {
        return Err(fail(
            rules::HEADER_LENGTH,
            format!(
                "header length {header_len} exceeds the {} bytes after the length field",
                file_len - 8
            ),
        ));
    }
    // Both bounds checked above: the slice is inside the file and at most 100 MB.
    let raw = &file[8..8 + header_len as usize];
    let text = std::str::from_utf8(raw).map_err(|e| {
        fail(
            rules::HEADER_UTF8,
            format!("header is not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(fail(
            rules::HEADER_NOT_OBJECT,
            "header JSON is not an object".into(),
        ));
    }
    let cursor = RefCell::new(Cursor::default());
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de
        .deserialize_map(HeaderVisitor { cursor: &cursor })
        .and_then(|v| de.end().map(|()| v));
    let (raw_entries, metadata, duplicate) = parsed.map_err(|e| {
        let c = cursor.borrow();
        match e.classify() {
            serde_json::error::Category::Data if c.in_metadata => {
                fail(rules::METADATA, format!("__metadata__: {e}"))
            }
            serde_json::error::Category::Data => {
                fail(rules::HEADER_ENTRY, format!("tensor {:?}: {e}", c.key))
            }
            _ => fail(rules::HEADER_JSON, e.to_string()),
        }
    })?;
    if let Some(name) = duplicate {
        return Err(fail(
            rules::DUPLICATE_NAME,
            format!("tensor {name:?} appears twice in the header"),
        ));
    }
    let data_len = file_len - 8 - header_len;
    let mut tensors = Vec::with_capacity(raw_entries.len());
    for (name, raw) in raw_entries {
        tensors.push(validate_entry(path, name, raw, data_len)?);
    }
    check_coverage(path, &mut tensors, data_len)?;
    Ok(Header {
        header_len,
        tensors,
        metadata,
    })
}

fn validate_entry(path: &Path, name: String, raw: RawEntry, data_len: u64) -> Result<TensorEntry> {
    let fail = |rule, detail: String| CoreError::integrity(path, rule, detail);
    let dtype = Dtype::from_name(&raw.dtype).ok_or_else(|| {
        fail(
            rules::UNKNOWN_DTYPE,
            format!("tensor {name:?}: unknown dtype {:?}", raw.dtype),
        )
    })?;
    let overflow = || {
        fail(
            rules::SHAPE_OVERFLOW,
            format!("tensor {name:?}: shape {:?} overflows", raw.shape),
        )
    };
    if raw.shape.iter().any(|&d| d > MAX_DIM) {
        return Err(overflow());
    }
    let elements = raw
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let bits = elements.checked_mul(dtype.bits()).ok_or_else(overflow)?;
    if bits % 8 != 0 {
        return Err(fail(
            rules::SUB_BYTE_ALIGNMENT,
            format!(
                "tensor {name:?}: {elements} elements of {} do not fill whole bytes",
                dtype.name()
            ),
        ));
    }
    let (begin, end) = raw.data_offsets;
    if begin > end {
        return Err(fail(
            rules::OFFSETS_ORDER,
            format!("tensor {name:?}: data_offsets [{begin}, {end}] run backwards"),
        ));
    }
    if end > data_len {
        return Err(fail(
            rules::OFFSETS_OUT_OF_BOUNDS,
            format!(
                "tensor {name:?}: data_offsets end {end} past the {data_len}-byte data section"
            ),
        ));
    }
    if bits / 8 != end - begin {
        return Err(fail(
            rules::SIZE_MISMATCH,
            format!(
                "tensor {name:?}: shape {:?} of {} is {} bytes but data_offsets span {}",
                raw.shape,
                dtype.name(),
                bits / 8,
                end - begin
            ),
        ));
    }
    Ok(TensorEntry {
        name,
        dtype,
        shape: raw.shape,
        begin,
        end,
    })
}

/// Sort by position and require the ranges to tile `0..data_len` exactly.
fn check_coverage(path: &Path, tensors: &mut [TensorEntry], data_len: u64) -> Result<()> {
    let fail = |rule, detail: String| CoreError::integrity(path, rule, detail);
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut pos = 0u64;
    let mut prev: Option<&TensorEntry> = None;
    for t in tensors.iter() {
        if t.begin < pos {
            let other = prev.map(|p| p.name.as_str()).unwrap_or_default();
            return Err(fail(
                rules::OVERLAP,
                format!(
                    "tensor {:?} [{}, {}] overlaps tensor {other:?} ending at {pos}",
                    t.name, t.begin, t.end
                ),
            ));
        }
        if t.begin > pos {
            return Err(fail(
                rules::GAP,
                format!(
                    "bytes [{pos}, {}) of the data section belong to no tensor (before {:?})",
                    t.begin, t.name
                ),
            ));
        }
        pos = t.end;
        prev = Some(t);
    }
    if pos != data_len {
        return Err(fail(
            rules::TRAILING_BYTES,
            format!(
                "{} bytes after the last tensor (data section {data_len} bytes, tensors end at {pos})",
                data_len - pos
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
