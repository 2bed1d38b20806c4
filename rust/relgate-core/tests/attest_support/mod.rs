//! Shared helpers of the attestation tests: a minimal safetensors writer and an
//! independent reference of the tensor-merkle-blake3-v1 root.
#![allow(dead_code)]

pub mod gguf;

use std::path::Path;

/// One tensor to write: name, dtype, shape and raw bytes.
#[derive(Clone, Debug)]
pub struct T {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

pub fn dtype_bytes(dtype: &str) -> u64 {
    match dtype {
        "U8" | "I8" | "BOOL" | "F8_E4M3" => 1,
        "F16" | "BF16" | "I16" => 2,
        "F32" | "I32" => 4,
        _ => 8,
    }
}

/// Serialize `tensors` (data in the given order) into safetensors bytes.
pub fn safetensors_bytes(tensors: &[T]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut pos = 0u64;
    for t in tensors {
        let end = pos + t.data.len() as u64;
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [pos, end]}),
        );
        pos = end;
    }
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut text = serde_json::to_string(&header).unwrap();
    // Pad like the reference writer does, to an 8-byte boundary.
    while (text.len() + 8) % 8 != 0 {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

pub fn write(path: &Path, tensors: &[T]) {
    std::fs::write(path, safetensors_bytes(tensors)).unwrap();
}

/// Write the non-empty `shards` into `dir` as model-0000i-of-0000n.safetensors plus an
/// index (an index can only name files that hold a tensor).
pub fn write_sharded(dir: &Path, shards: &[Vec<T>]) {
    let shards: Vec<&Vec<T>> = shards.iter().filter(|s| !s.is_empty()).collect();
    let n = shards.len();
    let mut map = serde_json::Map::new();
    for (i, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
        write(&dir.join(&name), shard);
        for t in shard.iter() {
            map.insert(t.name.clone(), serde_json::Value::String(name.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

fn leaf(h: &dyn Fn(&[u8]) -> [u8; 32], t: &T) -> [u8; 32] {
    // serde_json's default map is sorted, and compact output has no whitespace: for
    // these objects that is RFC 8785.
    let obj = serde_json::json!({
        "name": t.name,
        "dtype": t.dtype,
        "shape": t.shape,
        "data_blake3": hex::encode(blake3::hash(&t.data).as_bytes()),
    });
    let mut buf = vec![0u8];
    buf.extend_from_slice(serde_json::to_string(&obj).unwrap().as_bytes());
    h(&buf)
}

fn mth(h: &dyn Fn(&[u8]) -> [u8; 32], d: &[[u8; 32]]) -> [u8; 32] {
    match d.len() {
        0 => h(b""),
        1 => d[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let mut buf = vec![1u8];
            buf.extend_from_slice(&mth(h, &d[..k]));
            buf.extend_from_slice(&mth(h, &d[k..]));
            h(&buf)
        }
    }
}

/// The tensors of a GGUF file as the scheme sees them (ggml type name, GGUF dims order).
pub fn from_gguf(tensors: &[gguf::Tensor]) -> Vec<T> {
    tensors
        .iter()
        .map(|t| T {
            name: t.name_str(),
            dtype: gguf::type_name(t.ggml_type),
            shape: t.dims.clone(),
            data: t.data.clone(),
        })
        .collect()
}

/// The root as the scheme defines it, computed the slow obvious way.
pub fn reference_root(tensors: &[T]) -> String {
    let h = |b: &[u8]| *blake3::hash(b).as_bytes();
    let mut sorted: Vec<&T> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let leaves: Vec<[u8; 32]> = sorted.iter().map(|t| leaf(&h, t)).collect();
    hex::encode(mth(&h, &leaves))
}
