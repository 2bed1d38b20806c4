//! The discrete-score fast paths: rank statistics straight from a contingency table.
//!
//! Scores in this domain take few distinct values (grades 0/1, Likert, a 0.1 grid), and
//! Spearman and Kendall tau-b depend on the data only through the kx x ky table of
//! (x value, y value) counts. So when both sides have at most [`CAP`] distinct values:
//! - **one group** (any size): a single pass maps each row to its (x, y) cell with two
//!   tiny hash lookups and counts it; nothing per row is stored, nothing is sorted but the
//!   few distinct values. Large groups split into fixed chunks counted in parallel and
//!   merged exactly. This is what makes 10^7 rows take one pass over memory.
//! - **many small groups** (`block_*`): one hash table serves a whole block of consecutive
//!   groups, so distinct values are found and sorted once per block instead of per group;
//!   each group then costs a few counter increments per row plus O(kx + ky).
//!
//! Anything else (NaN present, more distinct values) returns `None` and the caller takes
//! the general dense-rank path; both paths give identical results.

use super::corr::{finish_pearson, finish_tau_b, weighted_table_cmd};
use super::dense::{norm_bits, order_key};
use super::Statistic;
use rayon::prelude::*;

/// Most distinct values per side on the table paths (ids fit in a byte, the per-chunk
/// table in 16 KiB of L1).
pub(crate) const CAP: usize = 64;
const SLOTS: usize = 256;
const EMPTY: u64 = u64::MAX;
const CHUNK: usize = 1 << 16;

/// Open-addressing map from value bits to first-seen id; at most [`CAP`] values. A NaN is
/// never stored: looking one up answers `None`, like an overflow, so callers need no
/// separate NaN pass over the data.
pub(crate) struct SmallHash {
    keys: Box<[u64; SLOTS]>,
    slot: Box<[u8; SLOTS]>,
    used: Vec<u8>,
    pub distinct: Vec<u64>,
}

impl Default for SmallHash {
    fn default() -> Self {
        SmallHash {
            keys: Box::new([EMPTY; SLOTS]),
            slot: Box::new([0; SLOTS]),
            used: Vec::with_capacity(CAP),
            distinct: Vec::with_capacity(CAP),
        }
    }
}

impl SmallHash {
    /// Forget all values, touching only the slots in use.
    pub fn reset(&mut self) {
        for &h in &self.used {
            self.keys[h as usize] = EMPTY;
        }
        self.used.clear();
        self.distinct.clear();
    }

    /// Id of value `v`, inserting it if new; `None` for NaN or once more than [`CAP`]
    /// values.
    #[inline(always)]
    pub fn id(&mut self, v: f64) -> Option<u8> {
        let b = norm_bits(v);
        let mut h = (b.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        loop {
            let t = self.keys[h];
            if t == b {
                // The one NaN pattern equal to EMPTY must not match an empty slot.
                return if t == EMPTY { None } else { Some(self.slot[h]) };
            }
            if t == EMPTY {
                return self.insert(h, b);
            }
            h = (h + 1) & (SLOTS - 1);
        }
    }

    #[cold]
    fn insert(&mut self, h: usize, b: u64) -> Option<u8> {
        if self.distinct.len() == CAP || f64::from_bits(b).is_nan() {
            return None;
        }
        let id = self.distinct.len() as u8;
        self.keys[h] = b;
        self.slot[h] = id;
        self.used.push(h as u8);
        self.distinct.push(b);
        Some(id)
    }

    /// `perm[first_seen_id] = position in sorted order`.
    pub fn sorted_perm(&self, perm: &mut [u8; CAP]) {
        let mut order: [u8; CAP] = [0; CAP];
        let k = self.distinct.len();
        for (i, o) in order[..k].iter_mut().enumerate() {
            *o = i as u8;
        }
        order[..k].sort_unstable_by_key(|&i| order_key(self.distinct[i as usize]));
        for (pos, &i) in order[..k].iter().enumerate() {
            perm[i as usize] = pos as u8;
        }
    }
}

/// A kx x ky table of counts over the sorted distinct values of each side (row-major).
pub(crate) struct Table {
    pub kx: usize,
    pub ky: usize,
    pub counts: Vec<u64>,
}

/// One chunk's count: (distinct x bits, distinct y bits, CAP x CAP first-seen table).
type ChunkCount = (Vec<u64>, Vec<u64>, Vec<u32>);

fn count_chunk(x: &[f64], y: &[f64]) -> Option<ChunkCount> {
    let (mut hx, mut hy) = (SmallHash::default(), SmallHash::default());
    let mut t = vec![0u32; CAP * CAP];
    for (&a, &b) in x.iter().zip(y) {
        let i = hx.id(a)? as usize;
        let j = hy.id(b)? as usize;
        t[i * CAP + j] += 1;
    }
    Some((hx.distinct, hy.distinct, t))
}

/// The contingency table of (x, y), or `None` (NaN, or too many distinct values).
pub(crate) fn table(x: &[f64], y: &[f64]) -> Option<Table> {
    let parts: Vec<Option<ChunkCount>> = if x.len() > CHUNK {
        x.par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .map(|(a, b)| count_chunk(a, b))
            .collect()
    } else {
        vec![count_chunk(x, y)]
    };
    let parts: Vec<_> = parts.into_iter().collect::<Option<Vec<_>>>()?;
    let union = |side: fn(&ChunkCount) -> &Vec<u64>| {
        let mut keys: Vec<u64> = parts
            .iter()
            .flat_map(|p| side(p).iter().map(|&b| order_key(b)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let kxs = union(|p| &p.0);
    let kys = union(|p| &p.1);
    let (kx, ky) = (kxs.len(), kys.len());
    let mut counts = vec![0u64; kx * ky];
    let pos = |keys: &[u64], b: u64| keys.binary_search(&order_key(b)).expect("in union");
    for (dx, dy, t) in &parts {
        let mx: Vec<usize> = dx.iter().map(|&b| pos(&kxs, b)).collect();
        let my: Vec<usize> = dy.iter().map(|&b| pos(&kys, b)).collect();
        for (i, &gi) in mx.iter().enumerate() {
            for (j, &gj) in my.iter().enumerate() {
                counts[gi * ky + gj] += t[i * CAP + j] as u64;
            }
        }
    }
    Some(Table { kx, ky, counts })
}

impl Table {
    fn margins(&self) -> (Vec<i64>, Vec<i64>) {
        let mut wx = vec![0i64; self.kx];
        let mut wy = vec![0i64; self.ky];
        for (row, wxi) in self.counts.chunks(self.ky).zip(wx.iter_mut()) {
            for (&c, wyj) in row.iter().zip(wy.iter_mut()) {
                *wxi += c as i64;
                *wyj += c as i64;
            }
        }
        (wx, wy)
    }

    /// The statistic of the table (NaN for n < 2 or a constant side).
    pub fn statistic(&self, stat: Statistic) -> f64 {
        if self.kx < 2 || self.ky < 2 {
            return f64::NAN;
        }
        let (wx, wy) = self.margins();
        let n: i64 = wx.iter().sum();
        if n < 2 {
            return f64::NAN;
        }
        match stat {
            Statistic::Spearman => {
                let (ax, sxx) = centered2(&wx, n);
                let (ay, syy) = centered2(&wy, n);
                let mut sxy = 0i128;
                for (i, &a) in ax.iter().enumerate() {
                    let row = &self.counts[i * self.ky..(i + 1) * self.ky];
                    let inner: i128 = row
                        .iter()
                        .zip(&ay)
                        .map(|(&c, &b)| c as i128 * b as i128)
                        .sum();
                    sxy += inner * a as i128;
                }
                finish_pearson(sxy as f64, sxx as f64, syy as f64)
            }
            Statistic::KendallTauB => {
                let w: Vec<i64> = self.counts.iter().map(|&c| c as i64).collect();
                let (cmd, _) = weighted_table_cmd(&w, self.kx, self.ky);
                let ties = |v: &[i64]| v.iter().map(|&t| t * (t - 1) / 2).sum::<i64>();
                let tot = n * (n - 1) / 2;
                finish_tau_b(cmd as f64, tot as f64, ties(&wx) as f64, ties(&wy) as f64)
            }
        }
    }
}

/// Twice the centered average ranks (exact integers) and their weighted sum of squares.
fn centered2(w: &[i64], n: i64) -> (Vec<i64>, i128) {
    let mut cum = 0i64;
    let mut ss = 0i128;
    let a = w
        .iter()
        .map(|&c| {
            let v = 2 * cum + c - n;
            cum += c;
            ss += c as i128 * v as i128 * v as i128;
            v
        })
        .collect();
    (a, ss)
}

/// Per-thread buffers of the block path.
#[derive(Default)]
pub(crate) struct Block {
    hx: SmallHash,
    hy: SmallHash,
    ix: Vec<u8>,
    iy: Vec<u8>,
    table: Vec<i64>,
}

/// Statistic of each small group in `bounds` (consecutive offsets over `x`, `y`) into
/// `out`, sharing one hash table per side. False (with `out` untouched) when the block has
/// a NaN or too many distinct values.
pub(crate) fn block_stats(
    x: &[f64],
    y: &[f64],
    bounds: &[i64],
    stat: Statistic,
    b: &mut Block,
    out: &mut [f64],
) -> bool {
    let (lo, hi) = (bounds[0] as usize, bounds[bounds.len() - 1] as usize);
    let (x, y) = (&x[lo..hi], &y[lo..hi]);
    b.hx.reset();
    b.hy.reset();
    b.ix.clear();
    b.iy.clear();
    for &v in x {
        match b.hx.id(v) {
            Some(i) => b.ix.push(i),
            None => return false,
        }
    }
    for &v in y {
        match b.hy.id(v) {
            Some(i) => b.iy.push(i),
            None => return false,
        }
    }
    let (kx, ky) = (b.hx.distinct.len(), b.hy.distinct.len());
    // Kendall needs a kx x ky table per group: only worth it while that table is small.
    if stat == Statistic::KendallTauB && kx * ky > 4 * (x.len() / out.len().max(1)) + 64 {
        return false;
    }
    let mut px = [0u8; CAP];
    let mut py = [0u8; CAP];
    b.hx.sorted_perm(&mut px);
    b.hy.sorted_perm(&mut py);
    b.ix.iter_mut().for_each(|i| *i = px[*i as usize]);
    b.iy.iter_mut().for_each(|i| *i = py[*i as usize]);
    let (mut wx, mut wy) = ([0i64; CAP], [0i64; CAP]);
    for (g, o) in out.iter_mut().enumerate() {
        let (a, e) = (bounds[g] as usize - lo, bounds[g + 1] as usize - lo);
        let (gx, gy) = (&b.ix[a..e], &b.iy[a..e]);
        let n = (e - a) as i64;
        wx[..kx].fill(0);
        wy[..ky].fill(0);
        for (&i, &j) in gx.iter().zip(gy) {
            wx[i as usize] += 1;
            wy[j as usize] += 1;
        }
        if n < 2 {
            *o = f64::NAN;
            continue;
        }
        *o = match stat {
            Statistic::Spearman => {
                let (mut ax, mut ay) = ([0i64; CAP], [0i64; CAP]);
                let sxx = centered_into(&wx[..kx], n, &mut ax);
                let syy = centered_into(&wy[..ky], n, &mut ay);
                // |term| <= n^2 and groups here are small: i64 is exact.
                let sxy: i64 = gx
                    .iter()
                    .zip(gy)
                    .map(|(&i, &j)| ax[i as usize] * ay[j as usize])
                    .sum();
                finish_pearson(sxy as f64, sxx as f64, syy as f64)
            }
            Statistic::KendallTauB => {
                b.table.clear();
                b.table.resize(kx * ky, 0);
                for (&i, &j) in gx.iter().zip(gy) {
                    b.table[i as usize * ky + j as usize] += 1;
                }
                let (cmd, _) = weighted_table_cmd(&b.table, kx, ky);
                let ties = |v: &[i64]| v.iter().map(|&t| t * (t - 1) / 2).sum::<i64>();
                let tot = n * (n - 1) / 2;
                finish_tau_b(
                    cmd as f64,
                    tot as f64,
                    ties(&wx[..kx]) as f64,
                    ties(&wy[..ky]) as f64,
                )
            }
        };
    }
    true
}

fn centered_into(w: &[i64], n: i64, out: &mut [i64; CAP]) -> i64 {
    let mut cum = 0i64;
    let mut ss = 0i64;
    for (o, &c) in out.iter_mut().zip(w) {
        let v = 2 * cum + c - n;
        *o = v;
        ss += c * v * v;
        cum += c;
    }
    ss
}
