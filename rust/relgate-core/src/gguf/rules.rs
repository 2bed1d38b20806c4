//! Stable rule identifiers of GGUF validation failures (the `rule` of each
//! [`crate::CoreError::Integrity`] the parser returns).

/// The file does not start with `GGUF`.
pub const MAGIC: &str = "gguf-magic";
/// Version 0 or newer than 3.
pub const VERSION: &str = "gguf-version";
/// Version 1 (32-bit counts and lengths): no longer produced nor loaded by llama.cpp.
pub const V1: &str = "gguf-v1";
/// The version field reads as a big-endian number: a big-endian GGUF.
pub const BIG_ENDIAN: &str = "gguf-big-endian";
/// The file ends inside the header.
pub const TRUNCATED: &str = "gguf-truncated";
/// The header runs past [`super::MAX_HEADER_LEN`].
pub const HEADER_LENGTH: &str = "gguf-header-length";
/// More tensors than [`super::MAX_TENSORS`] or than the file could describe.
pub const TENSOR_COUNT: &str = "gguf-tensor-count";
/// More KV pairs than [`super::MAX_KV`] or than the file could hold.
pub const KV_COUNT: &str = "gguf-kv-count";
/// A string longer than the bytes left in the file.
pub const STRING_LENGTH: &str = "gguf-string-length";
/// An array with more elements than the bytes left could hold.
pub const ARRAY_LENGTH: &str = "gguf-array-length";
/// A value type outside the 13 of the spec.
pub const VALUE_TYPE: &str = "gguf-value-type";
/// Arrays nested deeper than [`super::MAX_ARRAY_DEPTH`].
pub const ARRAY_DEPTH: &str = "gguf-array-depth";
/// An empty or non-UTF-8 key.
pub const KEY: &str = "gguf-key";
/// The same key twice.
pub const DUPLICATE_KEY: &str = "gguf-duplicate-key";
/// `general.alignment` not a u32 power of two.
pub const ALIGNMENT: &str = "gguf-alignment";
/// `split.no` / `split.count` inconsistent with each other or the file names.
pub const SPLIT: &str = "gguf-split";
/// A tensor name that is empty, too long, not UTF-8 or holds a NUL.
pub const TENSOR_NAME: &str = "gguf-tensor-name";
/// The same tensor name twice (in one file or across the shards of a split model).
pub const DUPLICATE_NAME: &str = "gguf-duplicate-name";
/// n_dims outside 1..=4.
pub const N_DIMS: &str = "gguf-n-dims";
/// A dim of 0 or above 2^53 - 1.
pub const DIM: &str = "gguf-dim";
/// A ggml type id that is unknown, deprecated or removed.
pub const UNKNOWN_TYPE: &str = "gguf-unknown-type";
/// ne\[0\] is not a multiple of the type's block size.
pub const BLOCK_SIZE: &str = "gguf-block-size";
/// The element count or byte size overflows 64 bits.
pub const SHAPE_OVERFLOW: &str = "gguf-shape-overflow";
/// A tensor offset that is not a multiple of the alignment.
pub const OFFSET_ALIGNMENT: &str = "gguf-offset-alignment";
/// A tensor that ends past the end of the file.
pub const OUT_OF_BOUNDS: &str = "gguf-out-of-bounds";
/// Two tensors overlap.
pub const OVERLAP: &str = "gguf-overlap";
/// Bytes between tensors (or before the first) that are more than padding.
pub const GAP: &str = "gguf-gap";
/// More bytes after the last tensor than padding.
pub const TRAILING_BYTES: &str = "gguf-trailing-bytes";
/// A padding byte that is not zero.
pub const PADDING: &str = "gguf-padding";
