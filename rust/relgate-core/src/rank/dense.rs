//! Dense ranking: map each value to the index of its distinct value in sorted order.
//!
//! Everything downstream (tie-averaged ranks, Kendall's tie counts, the bootstrap's
//! contingency cells) is computed from these dense ids and the count of each id, so ties,
//! signed zeros and infinities are settled here once.
//!
//! Two paths give identical ids:
//! - **Counting path** (the common case in this domain: grades 0/1, Likert, a 0.1 grid). A
//!   small open-addressing hash table collects the distinct values; only those few are
//!   sorted, and every row is ranked by one table lookup: O(n + k log k) instead of
//!   O(n log n). It gives up as soon as more than `cap` distinct values appear.
//! - **Sort path**: sort (key, row) pairs, walk runs of equal keys.
//!
//! Large inputs run both paths in parallel over fixed chunks (results do not depend on the
//! thread count: the chunking is fixed and the merge is exact).

use rayon::prelude::*;

/// Marks an empty hash slot. It is the bit pattern of a NaN, and NaNs never reach here.
const EMPTY: u64 = u64::MAX;
/// Inputs at least this long are ranked with chunk-level parallelism.
pub(crate) const PAR_MIN_LEN: usize = 1 << 17;
const PAR_CHUNK: usize = 1 << 16;
/// Most distinct values the counting path accepts for a large input.
const LARGE_CAP: usize = 4096;

/// Bits of `v` with -0.0 folded onto +0.0 (IEEE: -0.0 + 0.0 == +0.0), so the two zeros
/// are one value, as they are for `==` and for scipy.
#[inline]
pub(crate) fn norm_bits(v: f64) -> u64 {
    (v + 0.0).to_bits()
}

/// Map normalized (non-NaN) f64 bits to a u64 whose unsigned order is the float order.
#[inline]
pub(crate) fn order_key(bits: u64) -> u64 {
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Dense ranks of one side: `ids[r]` is the position of row r's value among the sorted
/// distinct values, `counts[k]` how many rows hold distinct value k.
#[derive(Debug, Default, Clone)]
pub(crate) struct Dense {
    pub ids: Vec<u32>,
    pub counts: Vec<u64>,
    /// Calls left that go straight to sorting: after the counting path fails on a side
    /// (continuous scores), the next groups of that side are most likely continuous too.
    /// A hint only: both paths give the same ids.
    skip_counting: u32,
}

impl Dense {
    pub fn k(&self) -> usize {
        self.counts.len()
    }

    /// Twice the centered average rank of each distinct value: `2 * rank - (n + 1)`, an
    /// exact integer (ranks are half-integers), so sums of products are exact in i64/i128.
    pub fn centered2(&self, out: &mut Vec<i64>) {
        let n: i64 = self.counts.iter().sum::<u64>() as i64;
        out.clear();
        let mut cum = 0i64;
        for &c in &self.counts {
            let c = c as i64;
            out.push(2 * cum + c - n);
            cum += c;
        }
    }

    /// sum over ties t of t*(t-1)/2 (pairs tied on this side).
    pub fn tie_pairs(&self) -> i64 {
        self.counts
            .iter()
            .map(|&t| (t as i64) * (t as i64 - 1) / 2)
            .sum()
    }
}

/// Reusable buffers so ranking many small groups allocates nothing per group.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    table: Vec<u64>,
    slot: Vec<u32>,
    distinct: Vec<u64>,
    order: Vec<u32>,
    perm: Vec<u32>,
    keys: Vec<u64>,
    packed: Vec<u64>,
    local_counts: Vec<u64>,
}

/// Dense-rank `values` (no NaN) into `out`, reusing `scratch`.
pub(crate) fn dense_rank(values: &[f64], out: &mut Dense, scratch: &mut Scratch) {
    if values.len() >= PAR_MIN_LEN {
        dense_rank_large(values, out);
        return;
    }
    // Counting pays when distinct values are few; a cap of n/2 bounds the wasted work on
    // continuous data to half a hash pass before falling back to sorting.
    let cap = (values.len() / 2).clamp(8, 1024);
    out.ids.clear();
    out.ids.resize(values.len(), 0);
    if out.skip_counting > 0 {
        out.skip_counting -= 1;
        sort_ids(values, out, scratch);
    } else if hash_ids(values, cap, &mut out.ids, scratch) {
        let k = scratch.distinct.len();
        sorted_perm(&scratch.distinct, &mut scratch.order, &mut scratch.perm);
        out.counts.clear();
        out.counts.resize(k, 0);
        for (old, &new) in scratch.perm.iter().enumerate() {
            out.counts[new as usize] = scratch.local_counts[old];
        }
        let perm = &scratch.perm;
        for id in out.ids.iter_mut() {
            *id = perm[*id as usize];
        }
    } else {
        out.skip_counting = 15;
        sort_ids(values, out, scratch);
    }
}

/// Counting path: first-seen ids into `ids`, distinct bits (first-seen order) into
/// `scratch.distinct`, counts into `scratch.local_counts`. False once `cap` is exceeded.
fn hash_ids(values: &[f64], cap: usize, ids: &mut [u32], scratch: &mut Scratch) -> bool {
    let size = (cap * 2).next_power_of_two().max(16);
    let shift = 64 - size.trailing_zeros();
    let mask = size - 1;
    scratch.table.clear();
    scratch.table.resize(size, EMPTY);
    scratch.slot.clear();
    scratch.slot.resize(size, 0);
    scratch.distinct.clear();
    scratch.local_counts.clear();
    let table = &mut scratch.table;
    let slot = &mut scratch.slot;
    for (id, &v) in ids.iter_mut().zip(values) {
        let b = norm_bits(v);
        let mut h = (b.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize;
        loop {
            let t = table[h];
            if t == b {
                let s = slot[h];
                *id = s;
                scratch.local_counts[s as usize] += 1;
                break;
            }
            if t == EMPTY {
                if scratch.distinct.len() == cap {
                    return false;
                }
                let s = scratch.distinct.len() as u32;
                table[h] = b;
                slot[h] = s;
                scratch.distinct.push(b);
                scratch.local_counts.push(1);
                *id = s;
                break;
            }
            h = (h + 1) & mask;
        }
    }
    true
}

/// `perm[first_seen_id] = sorted position` for the distinct bits.
fn sorted_perm(distinct: &[u64], order: &mut Vec<u32>, perm: &mut Vec<u32>) {
    order.clear();
    order.extend(0..distinct.len() as u32);
    order.sort_unstable_by_key(|&i| order_key(distinct[i as usize]));
    perm.clear();
    perm.resize(distinct.len(), 0);
    for (pos, &i) in order.iter().enumerate() {
        perm[i as usize] = pos as u32;
    }
}

/// Sort path for one small or medium input (n < 2^32).
///
/// Sorting plain u64s is much faster than sorting (key, row) pairs, so the row index is
/// packed into the low bits of the order key. The few key bits this drops can only merge
/// values that differ by less than ~n ulps; such runs are re-sorted by full key, so the
/// result is exact.
fn sort_ids(values: &[f64], out: &mut Dense, scratch: &mut Scratch) {
    let n = values.len();
    let bits = (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1);
    let mask = (1u64 << bits) - 1;
    scratch.keys.clear();
    scratch
        .keys
        .extend(values.iter().map(|&v| order_key(norm_bits(v))));
    let keys = &scratch.keys;
    let packed = &mut scratch.packed;
    packed.clear();
    packed.extend(
        keys.iter()
            .enumerate()
            .map(|(r, &k)| (k & !mask) | r as u64),
    );
    packed.sort_unstable();
    // Runs sharing the truncated key: re-sort by full key unless they are true ties.
    let mut i = 0;
    while i < n {
        let head = packed[i] & !mask;
        let mut j = i + 1;
        while j < n && packed[j] & !mask == head {
            j += 1;
        }
        if j - i > 1 {
            let run = &mut packed[i..j];
            let first = keys[(run[0] & mask) as usize];
            if run.iter().any(|&p| keys[(p & mask) as usize] != first) {
                run.sort_unstable_by_key(|&p| keys[(p & mask) as usize]);
            }
        }
        i = j;
    }
    out.ids.clear();
    out.ids.resize(n, 0);
    out.counts.clear();
    let mut prev = None;
    for &p in packed.iter() {
        let r = (p & mask) as usize;
        if prev != Some(keys[r]) {
            out.counts.push(0);
            prev = Some(keys[r]);
        }
        let k = out.counts.len() - 1;
        out.counts[k] += 1;
        out.ids[r] = k as u32;
    }
}

fn walk_sorted(pairs: &[(u64, u32)], out: &mut Dense) {
    out.ids.clear();
    out.ids.resize(pairs.len(), 0);
    out.counts.clear();
    let mut prev: Option<u64> = None;
    for &(key, r) in pairs {
        if prev != Some(key) {
            out.counts.push(0);
            prev = Some(key);
        }
        let k = out.counts.len() - 1;
        out.counts[k] += 1;
        out.ids[r as usize] = k as u32;
    }
}

/// Large input: counting path per fixed chunk in parallel, merged through the union of the
/// chunks' distinct values; the parallel sort path if any chunk sees too many values.
fn dense_rank_large(values: &[f64], out: &mut Dense) {
    out.ids.clear();
    out.ids.resize(values.len(), 0);
    let locals: Vec<Option<(Vec<u64>, Vec<u64>)>> = out
        .ids
        .par_chunks_mut(PAR_CHUNK)
        .zip(values.par_chunks(PAR_CHUNK))
        .map_init(Scratch::default, |scratch, (ids, vals)| {
            if hash_ids(vals, LARGE_CAP, ids, scratch) {
                Some((scratch.distinct.clone(), scratch.local_counts.clone()))
            } else {
                None
            }
        })
        .collect();
    if locals.iter().any(Option::is_none) {
        let mut pairs: Vec<(u64, u32)> = values
            .par_iter()
            .enumerate()
            .map(|(r, &v)| (order_key(norm_bits(v)), r as u32))
            .collect();
        pairs.par_sort_unstable_by_key(|p| p.0);
        walk_sorted(&pairs, out);
        return;
    }
    let locals: Vec<(Vec<u64>, Vec<u64>)> = locals.into_iter().flatten().collect();
    let mut keys: Vec<u64> = locals
        .iter()
        .flat_map(|(d, _)| d.iter().map(|&b| order_key(b)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    out.counts.clear();
    out.counts.resize(keys.len(), 0);
    let maps: Vec<Vec<u32>> = locals
        .iter()
        .map(|(distinct, counts)| {
            distinct
                .iter()
                .zip(counts)
                .map(|(&b, &c)| {
                    let g = keys
                        .binary_search(&order_key(b))
                        .expect("key is in the union");
                    out.counts[g] += c;
                    g as u32
                })
                .collect()
        })
        .collect();
    out.ids
        .par_chunks_mut(PAR_CHUNK)
        .zip(maps.par_iter())
        .for_each(|(ids, map)| {
            for id in ids.iter_mut() {
                *id = map[*id as usize];
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(v: &[f64]) -> Dense {
        let mut d = Dense::default();
        dense_rank(v, &mut d, &mut Scratch::default());
        d
    }

    #[test]
    fn zeros_are_one_value_and_infinities_order() {
        let d = ranks(&[0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1.0]);
        assert_eq!(d.ids, vec![1, 1, 3, 0, 2]);
        assert_eq!(d.counts, vec![1, 2, 1, 1]);
    }

    #[test]
    fn counting_and_sort_paths_agree() {
        let v: Vec<f64> = (0..5000).map(|i| ((i * 7919) % 13) as f64 * 0.1).collect();
        let a = ranks(&v);
        let mut b = Dense::default();
        sort_ids(&v, &mut b, &mut Scratch::default());
        assert_eq!(a.ids, b.ids);
        assert_eq!(a.counts, b.counts);
    }

    /// Reference: sort (key, row) pairs.
    fn pair_ids(v: &[f64]) -> Dense {
        let mut pairs: Vec<(u64, u32)> = v
            .iter()
            .enumerate()
            .map(|(r, &x)| (order_key(norm_bits(x)), r as u32))
            .collect();
        pairs.sort_unstable();
        let mut d = Dense::default();
        walk_sorted(&pairs, &mut d);
        d
    }

    #[test]
    fn packed_sort_resolves_keys_that_differ_in_dropped_bits() {
        // Neighbouring floats (a few ulps apart) share all but the lowest key bits, which
        // the packed sort drops; mix them with exact ties, zeros and infinities.
        let mut v: Vec<f64> = Vec::new();
        for k in 0..200u64 {
            let base = f64::from_bits(1.0f64.to_bits() + (k * 37) % 23);
            v.push(if k % 5 == 0 { -base } else { base });
            if k % 7 == 0 {
                v.push(0.0);
                v.push(-0.0);
                v.push(f64::INFINITY);
            }
        }
        for len in [2, 3, 17, 64, 65, v.len()] {
            let mut got = Dense::default();
            sort_ids(&v[..len], &mut got, &mut Scratch::default());
            let want = pair_ids(&v[..len]);
            assert_eq!(got.ids, want.ids, "len {len}");
            assert_eq!(got.counts, want.counts);
        }
    }

    #[test]
    fn large_paths_agree_with_small() {
        let discrete: Vec<f64> = (0..300_000)
            .map(|i| ((i * 31) % 11) as f64 / 10.0)
            .collect();
        let continuous: Vec<f64> = (0..300_000)
            .map(|i| ((i as f64) * 0.618_033_988_7).fract() - 0.5)
            .collect();
        for v in [discrete, continuous] {
            let mut big = Dense::default();
            dense_rank_large(&v, &mut big);
            let mut small = Dense::default();
            sort_ids(&v, &mut small, &mut Scratch::default());
            assert_eq!(big.ids, small.ids);
            assert_eq!(big.counts, small.counts);
        }
    }
}
