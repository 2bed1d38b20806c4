//! Binding of relgate_core::merkle: RFC 6962 trees over SHA-256 or BLAKE3, as one-shot
//! functions and as the `MerkleTree` class (built once, queried many times).
//! Hashes cross the boundary as 32-byte `bytes`; anything else is an InvalidInputError.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use relgate_core::merkle::{self, Hash, HashAlgo, Tree};
use relgate_core::CoreError;

use crate::errors::{detach, to_pyerr};

fn algo(py: Python<'_>, name: &str) -> PyResult<HashAlgo> {
    HashAlgo::from_name(name).map_err(|e| to_pyerr(py, e))
}

fn hashes(py: Python<'_>, items: &[PyBackedBytes]) -> PyResult<Vec<Hash>> {
    items
        .iter()
        .map(|b| merkle::hash_from_slice(b))
        .collect::<Result<_, CoreError>>()
        .map_err(|e| to_pyerr(py, e))
}

fn hash(py: Python<'_>, b: &[u8]) -> PyResult<Hash> {
    merkle::hash_from_slice(b).map_err(|e| to_pyerr(py, e))
}

fn to_list<'py>(py: Python<'py>, hs: &[Hash]) -> Vec<Bound<'py, PyBytes>> {
    hs.iter().map(|h| PyBytes::new(py, h)).collect()
}

fn to_index(py: Python<'_>, v: i64, what: &str) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| {
        to_pyerr(
            py,
            CoreError::invalid(format!("{what} must be >= 0, got {v}")),
        )
    })
}

/// `H(0x00 || data)`.
#[pyfunction]
#[pyo3(signature = (data, algo="sha256"))]
fn merkle_leaf_hash<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    algo: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let a = self::algo(py, algo)?;
    let h = detach(py, || Ok(a.leaf_hash(&data)))?;
    Ok(PyBytes::new(py, &h))
}

/// Leaf hashes of many records, in parallel with the GIL released.
#[pyfunction]
#[pyo3(signature = (datas, algo="sha256"))]
fn merkle_leaf_hashes<'py>(
    py: Python<'py>,
    datas: Vec<PyBackedBytes>,
    algo: &str,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let a = self::algo(py, algo)?;
    let hs = detach(py, || Ok(merkle::leaf_hashes(a, &datas)))?;
    Ok(to_list(py, &hs))
}

/// RFC 6962 Merkle Tree Hash over leaf hashes.
#[pyfunction]
#[pyo3(signature = (leaf_hashes, algo="sha256"))]
fn merkle_root<'py>(
    py: Python<'py>,
    leaf_hashes: Vec<PyBackedBytes>,
    algo: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let a = self::algo(py, algo)?;
    let leaves = hashes(py, &leaf_hashes)?;
    let r = detach(py, || Ok(merkle::root(a, &leaves)))?;
    Ok(PyBytes::new(py, &r))
}

/// Inclusion proof (audit path) of leaf `index`.
#[pyfunction]
#[pyo3(signature = (leaf_hashes, index, algo="sha256"))]
fn merkle_inclusion_proof<'py>(
    py: Python<'py>,
    leaf_hashes: Vec<PyBackedBytes>,
    index: i64,
    algo: &str,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let a = self::algo(py, algo)?;
    let leaves = hashes(py, &leaf_hashes)?;
    let i = to_index(py, index, "index")?;
    let i = usize::try_from(i).unwrap_or(usize::MAX);
    let p = detach(py, || merkle::inclusion_proof(a, &leaves, i))?;
    Ok(to_list(py, &p))
}

/// Check an inclusion proof against a root.
#[pyfunction]
#[pyo3(signature = (leaf_hash, index, tree_size, proof, root, algo="sha256"))]
fn merkle_verify_inclusion(
    py: Python<'_>,
    leaf_hash: PyBackedBytes,
    index: i64,
    tree_size: i64,
    proof: Vec<PyBackedBytes>,
    root: PyBackedBytes,
    algo: &str,
) -> PyResult<bool> {
    let a = self::algo(py, algo)?;
    let leaf = hash(py, &leaf_hash)?;
    let r = hash(py, &root)?;
    let p = hashes(py, &proof)?;
    let i = to_index(py, index, "index")?;
    let n = to_index(py, tree_size, "tree_size")?;
    Ok(merkle::verify_inclusion(a, &leaf, i, n, &p, &r))
}

/// Consistency proof from the first `old_size` leaves to all of them.
#[pyfunction]
#[pyo3(signature = (leaf_hashes, old_size, algo="sha256"))]
fn merkle_consistency_proof<'py>(
    py: Python<'py>,
    leaf_hashes: Vec<PyBackedBytes>,
    old_size: i64,
    algo: &str,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let a = self::algo(py, algo)?;
    let leaves = hashes(py, &leaf_hashes)?;
    let m = to_index(py, old_size, "old_size")?;
    let m = usize::try_from(m).unwrap_or(usize::MAX);
    let p = detach(py, || merkle::consistency_proof(a, &leaves, m))?;
    Ok(to_list(py, &p))
}

/// Check a consistency proof between two roots.
#[pyfunction]
#[pyo3(signature = (old_size, new_size, old_root, new_root, proof, algo="sha256"))]
fn merkle_verify_consistency(
    py: Python<'_>,
    old_size: i64,
    new_size: i64,
    old_root: PyBackedBytes,
    new_root: PyBackedBytes,
    proof: Vec<PyBackedBytes>,
    algo: &str,
) -> PyResult<bool> {
    let a = self::algo(py, algo)?;
    let m = to_index(py, old_size, "old_size")?;
    let n = to_index(py, new_size, "new_size")?;
    let old = hash(py, &old_root)?;
    let new = hash(py, &new_root)?;
    let p = hashes(py, &proof)?;
    Ok(merkle::verify_consistency(a, m, n, &old, &new, &p))
}

/// An RFC 6962 tree built once from leaf hashes, with every level kept: the root of any
/// prefix and any proof in O(log n) hashes, all inclusion proofs in one parallel pass.
/// Immutable; the GIL is released while it is built.
#[pyclass(frozen, name = "MerkleTree", module = "relgate._native")]
pub struct MerkleTree {
    tree: Tree,
}

fn size_arg(py: Python<'_>, v: i64, what: &str) -> PyResult<usize> {
    let v = to_index(py, v, what)?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

#[pymethods]
impl MerkleTree {
    #[new]
    #[pyo3(signature = (leaf_hashes, algo="sha256"))]
    fn new(py: Python<'_>, leaf_hashes: Vec<PyBackedBytes>, algo: &str) -> PyResult<Self> {
        let a = self::algo(py, algo)?;
        let leaves = hashes(py, &leaf_hashes)?;
        let tree = detach(py, || Ok(Tree::new(a, leaves)))?;
        Ok(MerkleTree { tree })
    }

    /// Number of leaves.
    #[getter]
    fn size(&self) -> usize {
        self.tree.size()
    }

    /// `"sha256"` or `"blake3"`.
    #[getter]
    fn algo(&self) -> &'static str {
        self.tree.algo().name()
    }

    fn __len__(&self) -> usize {
        self.tree.size()
    }

    fn __repr__(&self) -> String {
        format!(
            "MerkleTree(size={}, algo={:?})",
            self.tree.size(),
            self.tree.algo().name()
        )
    }

    /// The Merkle Tree Hash of all leaves (`H("")` for none).
    fn root<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.tree.root())
    }

    /// The Merkle Tree Hash of the first `size` leaves.
    fn prefix_root<'py>(&self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        let n = size_arg(py, size, "size")?;
        let r = self.tree.prefix_root(n).map_err(|e| to_pyerr(py, e))?;
        Ok(PyBytes::new(py, &r))
    }

    /// Audit path of leaf `index` in the tree of the first `tree_size` leaves (default:
    /// all of them).
    #[pyo3(signature = (index, tree_size=None))]
    fn inclusion_proof<'py>(
        &self,
        py: Python<'py>,
        index: i64,
        tree_size: Option<i64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let i = size_arg(py, index, "index")?;
        let n = match tree_size {
            Some(n) => size_arg(py, n, "tree_size")?,
            None => self.tree.size(),
        };
        let p = self
            .tree
            .inclusion_proof(i, n)
            .map_err(|e| to_pyerr(py, e))?;
        Ok(to_list(py, &p))
    }

    /// Consistency proof from the first `old_size` leaves to the first `new_size`
    /// (default: all of them).
    #[pyo3(signature = (old_size, new_size=None))]
    fn consistency_proof<'py>(
        &self,
        py: Python<'py>,
        old_size: i64,
        new_size: Option<i64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let m = size_arg(py, old_size, "old_size")?;
        let n = match new_size {
            Some(n) => size_arg(py, n, "new_size")?,
            None => self.tree.size(),
        };
        let p = self
            .tree
            .consistency_proof(m, n)
            .map_err(|e| to_pyerr(py, e))?;
        Ok(to_list(py, &p))
    }

    /// The audit path of every leaf in the whole tree, in leaf order (computed in
    /// parallel with the GIL released).
    fn inclusion_proofs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Vec<Bound<'py, PyBytes>>>> {
        let all = detach(py, || Ok(self.tree.inclusion_proofs()))?;
        Ok(all.iter().map(|p| to_list(py, p)).collect())
    }

    /// The audit path of every leaf, each as one `bytes` of its hashes concatenated (32
    /// bytes each): the form a receipts bundle stores, and 15x fewer Python objects.
    fn inclusion_proofs_joined<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let all = detach(py, || Ok(self.tree.inclusion_proofs_joined()))?;
        Ok(all.iter().map(|p| PyBytes::new(py, p)).collect())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MerkleTree>()?;
    m.add_function(wrap_pyfunction!(merkle_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_leaf_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_inclusion_proof, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_inclusion, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_consistency_proof, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_consistency, m)?)?;
    Ok(())
}
