//! RFC 6962 (Certificate Transparency) Merkle trees over 32-byte digests.
//!
//! The tree is the one of RFC 6962 section 2.1 (and RFC 9162 section 2.1): leaves are
//! `H(0x00 || data)`, interior nodes `H(0x01 || left || right)`, the split of `n > 1` leaves
//! is at the largest power of two `k < n`, and the empty tree hashes to `H("")`.
//! Inclusion proofs follow section 2.1.1 (`PATH`), consistency proofs section 2.1.2
//! (`PROOF` / `SUBPROOF`); the verifiers are the algorithms of RFC 9162 section 2.1.3.2
//! and 2.1.4.2.
//!
//! [`Tree`] keeps every level of a tree built once, for prefix roots and proofs of a
//! tree that is queried many times (the receipts log).
//!
//! The hash is a runtime parameter ([`HashAlgo`]) so the same code serves weight
//! attestation (BLAKE3) and receipts (SHA-256); a new 32-byte hash is one enum variant and
//! one match arm in [`HashAlgo::hash_parts`].

pub mod tree;

use crate::error::{CoreError, Result};
use rayon::prelude::*;
use sha2::Digest as _;

pub use tree::Tree;

/// A node or leaf hash. Every supported algorithm has 32-byte output.
pub type Hash = [u8; 32];

/// Domain-separation prefixes of RFC 6962 (second-preimage resistance: a leaf can never be
/// read as an interior node).
pub const LEAF_PREFIX: u8 = 0x00;
pub const NODE_PREFIX: u8 = 0x01;

/// The hash function of a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Blake3,
    Sha256,
}

impl HashAlgo {
    /// Parse the names used across the Python API (`"blake3"`, `"sha256"`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "blake3" => Ok(HashAlgo::Blake3),
            "sha256" => Ok(HashAlgo::Sha256),
            other => Err(CoreError::invalid(format!(
                "unknown hash algorithm {other:?} (expected \"blake3\" or \"sha256\")"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Blake3 => "blake3",
            HashAlgo::Sha256 => "sha256",
        }
    }

    /// Hash the concatenation of `parts` without building it.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlgo::Blake3 => {
                let mut h = blake3::Hasher::new();
                for p in parts {
                    h.update(p);
                }
                *h.finalize().as_bytes()
            }
            HashAlgo::Sha256 => {
                let mut h = sha2::Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
        }
    }

    /// `H("")`: the root of the empty tree.
    pub fn empty_root(self) -> Hash {
        self.hash_parts(&[])
    }

    /// `H(0x00 || data)`.
    pub fn leaf_hash(self, data: &[u8]) -> Hash {
        self.hash_parts(&[&[LEAF_PREFIX], data])
    }

    /// `H(0x01 || left || right)`.
    pub fn node_hash(self, left: &Hash, right: &Hash) -> Hash {
        self.hash_parts(&[&[NODE_PREFIX], left, right])
    }
}

/// Leaf hashes of many records at once, in parallel (receipt verification hashes
/// hundreds of thousands of small records).
pub fn leaf_hashes<D: AsRef<[u8]> + Sync>(algo: HashAlgo, datas: &[D]) -> Vec<Hash> {
    // Small records: chunk so each rayon task does real work.
    datas
        .par_iter()
        .with_min_len(256)
        .map(|d| algo.leaf_hash(d.as_ref()))
        .collect()
}

/// Parse a digest given as bytes, refusing any other length.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash> {
    bytes.try_into().map_err(|_| {
        CoreError::invalid(format!(
            "a tree hash is 32 bytes, got {} bytes",
            bytes.len()
        ))
    })
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 6962 Merkle Tree Hash of `leaves` (already leaf-hashed).
///
/// Computed bottom-up, pairing adjacent nodes and carrying an odd last node up unchanged:
/// this gives exactly the recursive definition (split at the largest power of two) in
/// O(n) hashes and one allocation.
pub fn root(algo: HashAlgo, leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => return algo.empty_root(),
        1 => return leaves[0],
        _ => {}
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        let pairs = level.len() / 2;
        for i in 0..pairs {
            level[i] = algo.node_hash(&level[2 * i], &level[2 * i + 1]);
        }
        if level.len() % 2 == 1 {
            level[pairs] = level[level.len() - 1];
            level.truncate(pairs + 1);
        } else {
            level.truncate(pairs);
        }
    }
    level[0]
}

/// Inclusion proof (audit path) of leaf `index`, RFC 6962 section 2.1.1: sibling subtree
/// roots from the leaf up to the root.
pub fn inclusion_proof(algo: HashAlgo, leaves: &[Hash], index: usize) -> Result<Vec<Hash>> {
    if index >= leaves.len() {
        return Err(CoreError::invalid(format!(
            "leaf index {index} out of range for a tree of {} leaves",
            leaves.len()
        )));
    }
    let mut proof = Vec::new();
    path(algo, index, leaves, &mut proof);
    Ok(proof)
}

fn path(algo: HashAlgo, m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(algo, m, &d[..k], out);
        out.push(root(algo, &d[k..]));
    } else {
        path(algo, m - k, &d[k..], out);
        out.push(root(algo, &d[..k]));
    }
}

/// Check an inclusion proof (RFC 9162 section 2.1.3.2). Returns false for any mismatch,
/// including an index outside the tree or a proof of the wrong length.
pub fn verify_inclusion(
    algo: HashAlgo,
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    expected_root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = algo.node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = algo.node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *expected_root
}

/// Consistency proof between the first `old_size` leaves and the whole of `leaves`,
/// RFC 6962 section 2.1.2. Empty when `old_size` is 0 or equals the tree size.
pub fn consistency_proof(algo: HashAlgo, leaves: &[Hash], old_size: usize) -> Result<Vec<Hash>> {
    if old_size > leaves.len() {
        return Err(CoreError::invalid(format!(
            "old size {old_size} is larger than the tree ({} leaves)",
            leaves.len()
        )));
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(algo, old_size, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(algo: HashAlgo, m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(algo, d));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(algo, m, &d[..k], complete, out);
        out.push(root(algo, &d[k..]));
    } else {
        subproof(algo, m - k, &d[k..], false, out);
        out.push(root(algo, &d[..k]));
    }
}

/// Check a consistency proof (RFC 9162 section 2.1.4.2): the tree of `new_size` leaves with
/// root `new_root` extends the tree of `old_size` leaves with root `old_root`.
///
/// `old_size == 0` is consistent with anything when the proof is empty and `old_root` is
/// the empty-tree hash; equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    algo: HashAlgo,
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == algo.empty_root();
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    // When old_size is a power of two the old root is itself a node on the path and is
    // not sent; prepend it.
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        nodes.push(*old_root);
    }
    nodes.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    for c in &nodes[1..] {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = algo.node_hash(c, &fr);
            sr = algo.node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = algo.node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *old_root && sr == *new_root && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursive definition of RFC 6962, as a reference for the bottom-up `root`.
    fn mth_ref(algo: HashAlgo, d: &[Hash]) -> Hash {
        match d.len() {
            0 => algo.empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n);
                algo.node_hash(&mth_ref(algo, &d[..k]), &mth_ref(algo, &d[k..]))
            }
        }
    }

    fn leaves(algo: HashAlgo, n: usize) -> Vec<Hash> {
        (0..n).map(|i| algo.leaf_hash(&[i as u8])).collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn sha256_empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(HashAlgo::Sha256.empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn certificate_transparency_reference_roots() {
        // The 8 leaves of the Certificate Transparency test suite
        // (google/certificate-transparency, merkle_tree_test.cc) and their MTH for
        // sizes 1..8.
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let algo = HashAlgo::Sha256;
        let hashed: Vec<Hash> = inputs.iter().map(|d| algo.leaf_hash(d)).collect();
        for (n, want) in roots.iter().enumerate() {
            assert_eq!(
                hex::encode(root(algo, &hashed[..=n])),
                *want,
                "size {}",
                n + 1
            );
        }
    }

    #[test]
    fn root_matches_recursive_definition() {
        for algo in [HashAlgo::Blake3, HashAlgo::Sha256] {
            for n in 0..70 {
                let l = leaves(algo, n);
                assert_eq!(root(algo, &l), mth_ref(algo, &l), "n={n}");
            }
        }
    }

    #[test]
    fn inclusion_proofs_round_trip_and_reject_tampering() {
        for algo in [HashAlgo::Blake3, HashAlgo::Sha256] {
            for n in 1..40usize {
                let l = leaves(algo, n);
                let r = root(algo, &l);
                for i in 0..n {
                    let p = inclusion_proof(algo, &l, i).unwrap();
                    assert!(verify_inclusion(algo, &l[i], i as u64, n as u64, &p, &r));
                    // Wrong index, wrong size, wrong leaf all fail.
                    if n > 1 {
                        let j = (i + 1) % n;
                        assert!(!verify_inclusion(algo, &l[i], j as u64, n as u64, &p, &r));
                        assert!(!verify_inclusion(algo, &l[j], i as u64, n as u64, &p, &r));
                    }
                    // (A wrong tree size is not always detectable from the proof alone: the
                    // size is bound to the root by whoever publishes both.)
                    assert!(!verify_inclusion(algo, &l[i], n as u64, n as u64, &p, &r));
                    let mut longer = p.clone();
                    longer.push(r);
                    assert!(!verify_inclusion(
                        algo, &l[i], i as u64, n as u64, &longer, &r
                    ));
                    if let Some(first) = p.first() {
                        let mut bad = p.clone();
                        bad[0] = algo.node_hash(first, first);
                        assert!(!verify_inclusion(algo, &l[i], i as u64, n as u64, &bad, &r));
                    }
                }
                assert!(inclusion_proof(algo, &l, n).is_err());
            }
        }
    }

    #[test]
    fn rfc6962_example_proof_shapes() {
        // RFC 6962 section 2.1.3: the 7-leaf tree d0..d6.
        let algo = HashAlgo::Sha256;
        let l = leaves(algo, 7);
        let h = |a: &Hash, b: &Hash| algo.node_hash(a, b);
        let (a, b, c, d, e, f, j) = (l[0], l[1], l[2], l[3], l[4], l[5], l[6]);
        let (g, hh, i, k) = (h(&a, &b), h(&c, &d), h(&e, &f), j);
        let (kk, ll) = (h(&g, &hh), h(&i, &k));
        // Audit path for b is [a, h, l]; for d is [c, g, l]; for e is [f, j, k].
        assert_eq!(inclusion_proof(algo, &l, 1).unwrap(), vec![a, hh, ll]);
        assert_eq!(inclusion_proof(algo, &l, 3).unwrap(), vec![c, g, ll]);
        assert_eq!(inclusion_proof(algo, &l, 4).unwrap(), vec![f, j, kk]);
        // Consistency proofs: 3 -> 7 is [c, d, g, l]; 4 -> 7 is [l]; 6 -> 7 is [i, j, k].
        assert_eq!(consistency_proof(algo, &l, 3).unwrap(), vec![c, d, g, ll]);
        assert_eq!(consistency_proof(algo, &l, 4).unwrap(), vec![ll]);
        assert_eq!(consistency_proof(algo, &l, 6).unwrap(), vec![i, j, kk]);
    }

    #[test]
    fn consistency_proofs_round_trip_and_reject_tampering() {
        for algo in [HashAlgo::Blake3, HashAlgo::Sha256] {
            let l = leaves(algo, 40);
            for n in 1..=40usize {
                let new_root = root(algo, &l[..n]);
                for m in 0..=n {
                    let old_root = root(algo, &l[..m]);
                    let p = consistency_proof(algo, &l[..n], m).unwrap();
                    assert!(
                        verify_consistency(algo, m as u64, n as u64, &old_root, &new_root, &p),
                        "m={m} n={n}"
                    );
                    if m > 0 && m < n {
                        let wrong_old = algo.leaf_hash(b"x");
                        assert!(!verify_consistency(
                            algo, m as u64, n as u64, &wrong_old, &new_root, &p
                        ));
                        assert!(!verify_consistency(
                            algo, m as u64, n as u64, &old_root, &wrong_old, &p
                        ));
                        let mut bad = p.clone();
                        bad.pop();
                        assert!(!verify_consistency(
                            algo, m as u64, n as u64, &old_root, &new_root, &bad
                        ));
                    }
                }
                assert!(consistency_proof(algo, &l[..n], n + 1).is_err());
            }
        }
    }

    #[test]
    fn algo_names_round_trip() {
        for a in [HashAlgo::Blake3, HashAlgo::Sha256] {
            assert_eq!(HashAlgo::from_name(a.name()).unwrap(), a);
        }
        assert!(HashAlgo::from_name("md5").is_err());
    }
}
