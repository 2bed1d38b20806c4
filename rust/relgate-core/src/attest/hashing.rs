//! Hashing a checkpoint's bytes: the tensors an attestation needs, and the whole-file
//! digests when they are asked for.

use rayon::prelude::*;

use super::checkpoint::Checkpoint;
use crate::merkle::Hash;

/// Tensors at least this large are hashed with several threads (BLAKE3's own tree
/// parallelism); smaller ones are spread across threads one tensor each.
const PARALLEL_TENSOR_BYTES: usize = 1 << 20;

pub(crate) fn blake3_of(bytes: &[u8]) -> Hash {
    if bytes.len() >= PARALLEL_TENSOR_BYTES {
        *blake3::Hasher::new()
            .update_rayon(bytes)
            .finalize()
            .as_bytes()
    } else {
        *blake3::hash(bytes).as_bytes()
    }
}

/// Digests of tensors `chosen` (indices into `cp.tensors`) and of every file `fi` with
/// `file_digest[fi]`. Two independent parallel passes: one over the tensors, one over the
/// files.
pub(crate) fn hash(
    cp: &Checkpoint,
    chosen: &[usize],
    file_digest: &[bool],
) -> (Vec<(usize, Hash)>, Vec<Option<Hash>>) {
    // Largest first so the big tensors start early and small ones fill in at the end.
    let mut order = chosen.to_vec();
    order.sort_by_key(|&i| std::cmp::Reverse(cp.tensors[i].end - cp.tensors[i].begin));
    let hash_tensors = || -> Vec<(usize, Hash)> {
        order
            .par_iter()
            .map(|&i| (i, blake3_of(cp.data(i))))
            .collect()
    };
    let hash_files = || -> Vec<Option<Hash>> {
        cp.files
            .par_iter()
            .zip(file_digest)
            .map(|(f, &want)| want.then(|| blake3_of(&f.map)))
            .collect()
    };
    rayon::join(hash_tensors, hash_files)
}
