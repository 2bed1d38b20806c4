//! A Merkle tree built once and kept: every level of the RFC 6962 tree, so the root of any
//! prefix, any inclusion proof and any consistency proof come out in O(log n) or
//! O(log^2 n) hashes instead of the O(n) of [`super::root`] and friends, and all n
//! inclusion proofs of a tree in one parallel pass (the receipts bundle needs all of them).
//!
//! Built bottom-up, carrying a level's odd last node up unchanged: node `i` of level `h`
//! is then the Merkle Tree Hash of leaves `[i * 2^h, min((i + 1) * 2^h, n))`. For a node
//! covering a full `2^h` leaves that is a perfect subtree of every tree of at least that
//! many leaves; the last node of a level, when partial, is the MTH of the tree's right
//! edge. Every subtree the RFC 6962 recursion visits starts at a multiple of its own
//! split size, so it is either one of those nodes or splits into one and a smaller
//! right part (`Tree::range_root`).

use rayon::prelude::*;

use super::{split_point, Hash, HashAlgo};
use crate::error::{CoreError, Result};

/// Levels wider than this are hashed in parallel.
const PARALLEL_LEVEL: usize = 1 << 12;

/// Every level of the RFC 6962 tree over some leaf hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    algo: HashAlgo,
    /// `levels[0]` are the leaves; the last level has one node (none for an empty tree).
    levels: Vec<Vec<Hash>>,
}

fn next_level(algo: HashAlgo, level: &[Hash]) -> Vec<Hash> {
    let pair = |p: &[Hash]| match p {
        [l, r] => algo.node_hash(l, r),
        [odd] => *odd,
        _ => unreachable!("chunks of at most 2"),
    };
    if level.len() >= PARALLEL_LEVEL {
        level.par_chunks(2).map(pair).collect()
    } else {
        level.chunks(2).map(pair).collect()
    }
}

impl Tree {
    /// Build the tree over `leaves` (already leaf-hashed).
    pub fn new(algo: HashAlgo, leaves: Vec<Hash>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = next_level(algo, levels.last().expect("checked"));
            levels.push(next);
        }
        Tree { algo, levels }
    }

    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// Number of leaves.
    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    pub fn leaves(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// The Merkle Tree Hash of all leaves (`H("")` for none).
    pub fn root(&self) -> Hash {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) if self.size() > 0 => *r,
            _ => self.algo.empty_root(),
        }
    }

    fn check_size(&self, size: usize, what: &str) -> Result<()> {
        if size > self.size() {
            return Err(CoreError::invalid(format!(
                "{what} {size} is larger than the tree ({} leaves)",
                self.size()
            )));
        }
        Ok(())
    }

    /// MTH of leaves `[start, end)`, for ranges the RFC 6962 recursion visits (`start` a
    /// multiple of the range's split size), in O(log n) hashes.
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let len = end - start;
        if len == 0 {
            return self.algo.empty_root();
        }
        // A stored node: a full, aligned block of 2^h leaves, or the tree's right edge.
        let h = len.next_power_of_two().trailing_zeros() as usize;
        let aligned = start % (1 << h) == 0;
        if aligned && (len == 1 << h || end == self.size()) {
            if let Some(node) = self.levels.get(h).and_then(|l| l.get(start >> h)) {
                return *node;
            }
        }
        let k = split_point(len);
        self.algo.node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }

    /// The Merkle Tree Hash of the first `size` leaves.
    pub fn prefix_root(&self, size: usize) -> Result<Hash> {
        self.check_size(size, "tree size")?;
        Ok(self.range_root(0, size))
    }

    /// Inclusion proof of leaf `index` in the tree of the first `tree_size` leaves
    /// (RFC 6962 section 2.1.1).
    pub fn inclusion_proof(&self, index: usize, tree_size: usize) -> Result<Vec<Hash>> {
        self.check_size(tree_size, "tree size")?;
        if index >= tree_size {
            return Err(CoreError::invalid(format!(
                "leaf index {index} out of range for a tree of {tree_size} leaves"
            )));
        }
        if tree_size == self.size() {
            return Ok(self.full_path(index));
        }
        let mut proof = Vec::new();
        self.path(index, 0, tree_size, &mut proof);
        Ok(proof)
    }

    /// The audit path in the whole tree: the sibling on every level where there is one
    /// (a carried node has none).
    fn siblings(&self, mut index: usize) -> impl Iterator<Item = &Hash> {
        self.levels[..self.levels.len() - 1]
            .iter()
            .filter_map(move |level| {
                let sibling = level.get(index ^ 1);
                index >>= 1;
                sibling
            })
    }

    fn full_path(&self, index: usize) -> Vec<Hash> {
        self.siblings(index).copied().collect()
    }

    fn path(&self, m: usize, start: usize, end: usize, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.range_root(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.range_root(start, start + k));
        }
    }

    /// Consistency proof between the trees of the first `old_size` and `new_size` leaves
    /// (RFC 6962 section 2.1.2); empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(&self, old_size: usize, new_size: usize) -> Result<Vec<Hash>> {
        self.check_size(new_size, "new size")?;
        if old_size > new_size {
            return Err(CoreError::invalid(format!(
                "old size {old_size} is larger than the new size {new_size}"
            )));
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: usize, start: usize, end: usize, complete: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(self.range_root(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, out);
            out.push(self.range_root(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range_root(start, start + k));
        }
    }

    /// The inclusion proofs of every leaf in the whole tree, computed in parallel.
    pub fn inclusion_proofs(&self) -> Vec<Vec<Hash>> {
        (0..self.size())
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| self.full_path(i))
            .collect()
    }

    /// The same proofs, each as its hashes concatenated (the form receipts store).
    pub fn inclusion_proofs_joined(&self) -> Vec<Vec<u8>> {
        (0..self.size())
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| {
                let mut out = Vec::with_capacity(32 * (self.levels.len() - 1));
                self.siblings(i).for_each(|h| out.extend_from_slice(h));
                out
            })
            .collect()
    }
}
