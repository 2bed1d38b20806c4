//! A small GGUF writer for tests. By default it lays a file out exactly as gguf-py's
//! `GGUFWriter` does (KV pairs, tensor infos, zero padding to the alignment after the
//! header and after every tensor, tensors in the given order); every field can be
//! overridden to build hostile files. Shared by the unit tests in src/gguf/tests.rs and the
//! integration tests, and independent of the crate (its own little type table).
#![allow(dead_code)]

/// A GGUF metadata value.
#[derive(Clone, Debug)]
pub enum Val {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(Vec<u8>),
    Arr(u32, Vec<Val>),
    U64(u64),
    I64(i64),
    F64(f64),
    /// Any type id followed by raw bytes (for unknown types and broken encodings).
    Raw(u32, Vec<u8>),
}

impl Val {
    pub fn str(s: &str) -> Val {
        Val::Str(s.as_bytes().to_vec())
    }

    pub fn type_id(&self) -> u32 {
        match self {
            Val::U8(_) => 0,
            Val::I8(_) => 1,
            Val::U16(_) => 2,
            Val::I16(_) => 3,
            Val::U32(_) => 4,
            Val::I32(_) => 5,
            Val::F32(_) => 6,
            Val::Bool(_) => 7,
            Val::Str(_) => 8,
            Val::Arr(..) => 9,
            Val::U64(_) => 10,
            Val::I64(_) => 11,
            Val::F64(_) => 12,
            Val::Raw(t, _) => *t,
        }
    }

    /// The value without its type id.
    pub fn payload(&self, out: &mut Vec<u8>) {
        match self {
            Val::U8(v) => out.push(*v),
            Val::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::Bool(v) => out.push(u8::from(*v)),
            Val::Str(s) => string(out, s),
            Val::Arr(elem, items) => {
                out.extend_from_slice(&elem.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for v in items {
                    v.payload(out);
                }
            }
            Val::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::Raw(_, b) => out.extend_from_slice(b),
        }
    }
}

pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// (id, name, block size, bytes per block) of the types the tests use, from gguf-py's
/// GGML_QUANT_SIZES.
pub const TYPES: [(u32, &str, u64, u64); 12] = [
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (8, "Q8_0", 32, 34),
    (12, "Q4_K", 256, 144),
    (14, "Q6_K", 256, 210),
    (16, "IQ2_XXS", 256, 66),
    (24, "I8", 1, 1),
    (28, "F64", 1, 8),
    (30, "BF16", 1, 2),
    (39, "MXFP4", 32, 17),
];

pub fn type_id(name: &str) -> u32 {
    TYPES.iter().find(|t| t.1 == name).expect("known type").0
}

pub fn type_name(id: u32) -> &'static str {
    TYPES.iter().find(|t| t.0 == id).expect("known type").1
}

/// Bytes of a tensor of `dims` (ne[0] first) of type `name`.
pub fn nbytes(name: &str, dims: &[u64]) -> u64 {
    let &(_, _, bs, ts) = TYPES.iter().find(|t| t.1 == name).expect("known type");
    dims.iter().product::<u64>() / bs * ts
}

/// One tensor to write.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub data: Vec<u8>,
    /// Offset in the data section; `None` places it where GGUFWriter would.
    pub offset: Option<u64>,
}

impl Tensor {
    /// A tensor of type `ty` and shape `dims` with pseudo-random bytes from `seed`.
    pub fn new(name: &str, ty: &str, dims: &[u64], seed: u64) -> Tensor {
        let n = nbytes(ty, dims);
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let data = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Tensor {
            name: name.as_bytes().to_vec(),
            dims: dims.to_vec(),
            ggml_type: type_id(ty),
            data,
            offset: None,
        }
    }

    pub fn name_str(&self) -> String {
        String::from_utf8(self.name.clone()).unwrap()
    }
}

/// A GGUF file to build.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    /// Layout alignment; written as `general.alignment` (u32) when it is not 32 or when
    /// `alignment_kv` is set.
    pub alignment: u64,
    pub alignment_kv: bool,
    pub kvs: Vec<(Vec<u8>, Val)>,
    pub tensors: Vec<Tensor>,
    pub tensor_count: Option<u64>,
    pub kv_count: Option<u64>,
    /// Byte used for all padding (0 in real files).
    pub pad: u8,
    /// Appended after the data section.
    pub trailing: Vec<u8>,
}

/// Where things landed in a built file.
#[derive(Clone, Debug)]
pub struct Layout {
    pub kv_start: u64,
    pub kv_end: u64,
    pub header_end: u64,
    pub data_start: u64,
    /// Absolute offset of each tensor's data, in `tensors` order.
    pub offsets: Vec<u64>,
}

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

impl Gguf {
    pub fn new(tensors: Vec<Tensor>) -> Gguf {
        Gguf {
            version: 3,
            alignment: 32,
            alignment_kv: false,
            kvs: vec![
                (b"general.architecture".to_vec(), Val::str("llama")),
                (
                    b"tokenizer.chat_template".to_vec(),
                    Val::str("{% for m in messages %}{{ m.content }}{% endfor %}"),
                ),
            ],
            tensors,
            tensor_count: None,
            kv_count: None,
            pad: 0,
            trailing: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, v: Val) -> Gguf {
        self.kvs.push((key.as_bytes().to_vec(), v));
        self
    }

    fn all_kvs(&self) -> Vec<(Vec<u8>, Val)> {
        let mut kvs = self.kvs.clone();
        if self.alignment != 32 || self.alignment_kv {
            kvs.push((
                b"general.alignment".to_vec(),
                Val::U32(self.alignment as u32),
            ));
        }
        kvs
    }

    fn offsets(&self) -> Vec<u64> {
        let mut pos = 0;
        self.tensors
            .iter()
            .map(|t| {
                let off = t.offset.unwrap_or(pos);
                pos = align(
                    off.saturating_add(t.data.len() as u64),
                    self.alignment.max(1),
                );
                off
            })
            .collect()
    }

    /// The bytes and where things are.
    pub fn build(&self) -> (Vec<u8>, Layout) {
        let a = self.alignment.max(1);
        let kvs = self.all_kvs();
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        let n_t = self.tensor_count.unwrap_or(self.tensors.len() as u64);
        out.extend_from_slice(&n_t.to_le_bytes());
        out.extend_from_slice(&self.kv_count.unwrap_or(kvs.len() as u64).to_le_bytes());
        let kv_start = out.len() as u64;
        for (k, v) in &kvs {
            string(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            v.payload(&mut out);
        }
        let kv_end = out.len() as u64;
        let offsets = self.offsets();
        for (t, off) in self.tensors.iter().zip(&offsets) {
            string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
        }
        let header_end = out.len() as u64;
        let data_start = align(header_end, a);
        out.resize(data_start as usize, self.pad);
        // Tensors placed absurdly far (hostile offsets) are described but not written.
        let placed = |off: u64, _t: &Tensor| off < 1 << 32;
        let data_len = self
            .tensors
            .iter()
            .zip(&offsets)
            .filter(|(t, off)| placed(**off, t))
            .map(|(t, off)| align(off + t.data.len() as u64, a))
            .max()
            .unwrap_or(0);
        let mut data = vec![self.pad; data_len as usize];
        for (t, off) in self.tensors.iter().zip(&offsets) {
            if placed(*off, t) {
                data[*off as usize..*off as usize + t.data.len()].copy_from_slice(&t.data);
            }
        }
        out.extend_from_slice(&data);
        out.extend_from_slice(&self.trailing);
        let layout = Layout {
            kv_start,
            kv_end,
            header_end,
            data_start,
            offsets: offsets.iter().map(|o| data_start + o).collect(),
        };
        (out, layout)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.build().0
    }
}

/// A few tensors of the kinds a llama.cpp model has (quantized matrices, F32 norms).
pub fn small_model() -> Vec<Tensor> {
    vec![
        Tensor::new("token_embd.weight", "Q8_0", &[64, 10], 1),
        Tensor::new("blk.0.attn_norm.weight", "F32", &[64], 2),
        Tensor::new("blk.0.ffn_down.weight", "Q4_1", &[96, 64], 3),
        Tensor::new("blk.0.attn_q.weight", "Q4_K", &[256, 3], 4),
        Tensor::new("output_norm.weight", "F32", &[5], 5),
        Tensor::new("blk.0.attn_k.weight", "F16", &[7, 3], 6),
    ]
}
