//! Binding of relgate_core::{safetensors, merkle, attest}. Attestations cross as plain
//! dicts of hex strings and ints; `relgate.attest` turns them into frozen values.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use relgate_core::attest::{self, Attestation, Options, TensorDigest};
use relgate_core::merkle;

use crate::errors::{detach, to_pyerr};

#[path = "merkle.rs"]
mod merkle_binding;

fn hex(h: [u8; 32]) -> String {
    use std::fmt::Write as _;
    h.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hex_opt(h: Option<[u8; 32]>) -> Option<String> {
    h.map(hex)
}

fn attestation_dict<'py>(py: Python<'py>, a: &Attestation) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("scheme", attest::SCHEME)?;
    d.set_item("root", hex_opt(a.root))?;
    d.set_item("bytes", a.bytes)?;
    d.set_item("unattested", a.unattested.clone())?;
    d.set_item("tensor_bytes_hashed", a.tensor_bytes_hashed)?;
    d.set_item("files_from_cache", a.files_from_cache)?;
    let files = PyList::empty(py);
    for f in &a.files {
        let fd = PyDict::new(py);
        fd.set_item("path", &f.path)?;
        fd.set_item("bytes", f.bytes)?;
        fd.set_item("blake3", hex_opt(f.blake3))?;
        fd.set_item("header_blake3", hex(f.header_blake3))?;
        fd.set_item("metadata_blake3", hex_opt(f.metadata_blake3))?;
        fd.set_item("tensors", f.tensors)?;
        files.append(fd)?;
    }
    d.set_item("files", files)?;
    let tensors = PyList::empty(py);
    for t in &a.tensors {
        let td = PyDict::new(py);
        td.set_item("name", &t.name)?;
        td.set_item("dtype", &t.dtype)?;
        td.set_item("shape", t.shape.clone())?;
        td.set_item("file", &t.file)?;
        td.set_item("offset", t.offset)?;
        td.set_item("bytes", t.bytes)?;
        td.set_item("data_blake3", hex_opt(t.data_blake3))?;
        td.set_item("leaf", hex_opt(t.leaf))?;
        tensors.append(td)?;
    }
    d.set_item("tensors", tensors)?;
    Ok(d)
}

/// Attest a checkpoint (safetensors file, directory or index; GGUF file or split model).
/// Releases the GIL while hashing. `cache_dir` is the leaf cache directory (None: none).
#[pyfunction]
#[pyo3(signature = (path, file_digests=false, spot_check=None, seed=0, cache_dir=None))]
fn attest_checkpoint<'py>(
    py: Python<'py>,
    path: PathBuf,
    file_digests: bool,
    spot_check: Option<usize>,
    seed: u64,
    cache_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = Options {
        file_digests,
        spot_check,
        seed,
        cache_dir,
    };
    let a = detach(py, || attest::attest(&path, &opts))?;
    attestation_dict(py, &a)
}

fn digest_dict<'py>(py: Python<'py>, t: &TensorDigest) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &t.name)?;
    d.set_item("dtype", &t.dtype)?;
    d.set_item("shape", t.shape.clone())?;
    d.set_item("file", &t.file)?;
    d.set_item("data_blake3", hex(t.data_blake3))?;
    d.set_item("leaf", hex(t.leaf))?;
    Ok(d)
}

/// Validate the checkpoint's headers and hash one tensor's bytes only.
#[pyfunction]
fn attest_tensor_digest<'py>(
    py: Python<'py>,
    path: PathBuf,
    name: String,
) -> PyResult<Bound<'py, PyDict>> {
    let t = detach(py, || attest::tensor_digest(&path, &name))?;
    digest_dict(py, &t)
}

/// The tensor-merkle-blake3-v1 leaf of one tensor's fields.
#[pyfunction]
fn attest_leaf_hash<'py>(
    py: Python<'py>,
    name: &str,
    dtype: &str,
    shape: Vec<u64>,
    data_blake3: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let data = merkle::hash_from_slice(data_blake3).map_err(|e| to_pyerr(py, e))?;
    Ok(PyBytes::new(
        py,
        &attest::leaf_hash(name, dtype, &shape, &data),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    merkle_binding::register(m)?;
    m.add("ATTEST_SCHEME", attest::SCHEME)?;
    m.add_function(wrap_pyfunction!(attest_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(attest_tensor_digest, m)?)?;
    m.add_function(wrap_pyfunction!(attest_leaf_hash, m)?)?;
    Ok(())
}
