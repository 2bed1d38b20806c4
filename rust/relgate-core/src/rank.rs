//! Spearman rho (tie-averaged ranks) and Kendall tau-b, for one pair of arrays and for many
//! ragged groups at once (CSR-style `offsets`: group i is rows `offsets[i]..offsets[i+1]`).
//!
//! Semantics follow `scipy.stats.spearmanr` / `scipy.stats.kendalltau(variant="b")`:
//! -0.0 and 0.0 tie, infinities rank at the ends, results are clipped to [-1, 1]. Where
//! scipy warns or raises, these return NaN: fewer than two pairs, or a constant side.
//! NaN inputs either make the result NaN (`Propagate`) or drop the pair (`Omit`).
//!
//! Groups run in parallel (rayon); a large group also parallelizes inside itself.

pub(crate) mod corr;
pub(crate) mod dense;
pub(crate) mod table;

use crate::error::{CoreError, Result};
use dense::{dense_rank, Dense, Scratch};
use rayon::prelude::*;
use std::str::FromStr;

/// What a NaN in either input does to a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    /// Any NaN makes the (group's) result NaN.
    Propagate,
    /// Pairs where either side is NaN are dropped.
    Omit,
}

impl FromStr for NanPolicy {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "propagate" => Ok(Self::Propagate),
            "omit" => Ok(Self::Omit),
            other => Err(CoreError::invalid(format!(
                "unknown nan_policy {other:?}: expected \"propagate\" or \"omit\""
            ))),
        }
    }
}

/// Which rank correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    Spearman,
    KendallTauB,
}

impl FromStr for Statistic {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "spearman" => Ok(Self::Spearman),
            "kendall_tau_b" | "kendall" => Ok(Self::KendallTauB),
            other => Err(CoreError::invalid(format!(
                "unknown statistic {other:?}: expected \"spearman\" or \"kendall_tau_b\""
            ))),
        }
    }
}

/// Fail unless all named arrays have the same length as the first.
pub fn check_lengths(arrays: &[(&str, usize)]) -> Result<()> {
    if let Some(&(first, len)) = arrays.first() {
        for &(name, l) in &arrays[1..] {
            if l != len {
                return Err(CoreError::invalid(format!(
                    "length mismatch: {first} has {len} elements but {name} has {l}"
                )));
            }
        }
    }
    Ok(())
}

/// Check CSR offsets over `len` rows: at least one entry, starts at 0, never decreases,
/// ends at `len`. Returns the number of groups.
pub fn check_offsets(offsets: &[i64], len: usize) -> Result<usize> {
    let Some((&first, &last)) = offsets.first().zip(offsets.last()) else {
        return Err(CoreError::invalid(
            "offsets is empty: it needs at least one element (0 for no groups)",
        ));
    };
    if first != 0 {
        return Err(CoreError::invalid(format!(
            "offsets must start at 0, got offsets[0] = {first}"
        )));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(CoreError::invalid(format!(
            "offsets must be non-decreasing: offsets[{}] = {} > offsets[{}] = {}",
            i,
            offsets[i],
            i + 1,
            offsets[i + 1]
        )));
    }
    if last != len as i64 {
        return Err(CoreError::invalid(format!(
            "offsets out of range: offsets[-1] = {last} but the data has {len} rows"
        )));
    }
    Ok(offsets.len() - 1)
}

/// Per-thread buffers reused across groups.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub dx: Dense,
    pub dy: Dense,
    pub scratch: Scratch,
    cx: Vec<i64>,
    cy: Vec<i64>,
    buf: Vec<u64>,
    fx: Vec<f64>,
    fy: Vec<f64>,
}

/// Copy the pairs where neither side is NaN into `fx`, `fy`.
pub(crate) fn drop_nan_pairs(x: &[f64], y: &[f64], fx: &mut Vec<f64>, fy: &mut Vec<f64>) {
    fx.clear();
    fy.clear();
    for (&a, &b) in x.iter().zip(y) {
        if !a.is_nan() && !b.is_nan() {
            fx.push(a);
            fy.push(b);
        }
    }
}

fn has_nan(v: &[f64]) -> bool {
    // Branch-free reduction: vectorizes, unlike an early-exit `any`.
    v.iter().fold(false, |acc, &a| acc | a.is_nan())
}

impl Work {
    /// The statistic for one pair of slices under `nan`.
    pub(crate) fn compute(&mut self, x: &[f64], y: &[f64], nan: NanPolicy, stat: Statistic) -> f64 {
        // Large inputs try the one-pass table path before anything else reads all rows
        // (it checks for NaN chunk by chunk while the chunk is in cache).
        if x.len() >= dense::PAR_MIN_LEN {
            if let Some(t) = table::table(x, y) {
                return t.statistic(stat);
            }
        }
        if has_nan(x) || has_nan(y) {
            match nan {
                NanPolicy::Propagate => return f64::NAN,
                NanPolicy::Omit => {
                    let (mut fx, mut fy) =
                        (std::mem::take(&mut self.fx), std::mem::take(&mut self.fy));
                    drop_nan_pairs(x, y, &mut fx, &mut fy);
                    let r = self.compute_clean(&fx, &fy, stat, false);
                    (self.fx, self.fy) = (fx, fy);
                    return r;
                }
            }
        }
        self.compute_clean(x, y, stat, x.len() >= dense::PAR_MIN_LEN)
    }

    /// `table_tried`: `compute` already found the table path unusable for these very rows.
    fn compute_clean(&mut self, x: &[f64], y: &[f64], stat: Statistic, table_tried: bool) -> f64 {
        if x.len() < 2 {
            return f64::NAN;
        }
        if x.len() >= TABLE_MIN && !table_tried {
            if let Some(t) = table::table(x, y) {
                return t.statistic(stat);
            }
        }
        dense_rank(x, &mut self.dx, &mut self.scratch);
        if self.dx.k() < 2 {
            return f64::NAN;
        }
        dense_rank(y, &mut self.dy, &mut self.scratch);
        match stat {
            Statistic::Spearman => {
                corr::spearman_dense(&self.dx, &self.dy, &mut self.cx, &mut self.cy)
            }
            Statistic::KendallTauB => corr::kendall_dense(&self.dx, &self.dy, &mut self.buf),
        }
    }
}

/// One statistic for one pair of arrays.
pub fn correlation(x: &[f64], y: &[f64], nan: NanPolicy, stat: Statistic) -> Result<f64> {
    check_lengths(&[("x", x.len()), ("y", y.len())])?;
    Ok(Work::default().compute(x, y, nan, stat))
}

/// Spearman rho with tie-averaged ranks (scipy.stats.spearmanr).
pub fn spearman(x: &[f64], y: &[f64], nan: NanPolicy) -> Result<f64> {
    correlation(x, y, nan, Statistic::Spearman)
}

/// Kendall tau-b (scipy.stats.kendalltau, variant "b").
pub fn kendall_tau_b(x: &[f64], y: &[f64], nan: NanPolicy) -> Result<f64> {
    correlation(x, y, nan, Statistic::KendallTauB)
}

/// One statistic per group; groups given by CSR `offsets` over `x` and `y`.
pub fn correlation_grouped(
    x: &[f64],
    y: &[f64],
    offsets: &[i64],
    nan: NanPolicy,
    stat: Statistic,
) -> Result<Vec<f64>> {
    check_lengths(&[("x", x.len()), ("y", y.len())])?;
    let groups = check_offsets(offsets, x.len())?;
    let tasks = plan_tasks(offsets, groups);
    let parts: Vec<Vec<f64>> = tasks
        .par_iter()
        .map_init(
            || (Work::default(), table::Block::default()),
            |(work, block), &(s, e)| {
                let mut out = vec![f64::NAN; e - s];
                let small = (offsets[s + 1] - offsets[s]) < SMALL_GROUP as i64;
                if !(small && table::block_stats(x, y, &offsets[s..=e], stat, block, &mut out)) {
                    for (g, o) in (s..e).zip(out.iter_mut()) {
                        let (a, b) = (offsets[g] as usize, offsets[g + 1] as usize);
                        *o = work.compute(&x[a..b], &y[a..b], nan, stat);
                    }
                }
                out
            },
        )
        .collect();
    Ok(parts.concat())
}

/// Groups at least this long are one task each (and may parallelize inside).
const SMALL_GROUP: usize = 256;
/// Rows per block of consecutive small groups sharing one hash table.
const BLOCK_ROWS: usize = 8192;
/// Groups at least this long try the contingency-table path first.
const TABLE_MIN: usize = 256;

/// Split groups into tasks: each large group alone, runs of small groups in blocks.
fn plan_tasks(offsets: &[i64], groups: usize) -> Vec<(usize, usize)> {
    let len = |g: usize| (offsets[g + 1] - offsets[g]) as usize;
    let mut tasks = Vec::new();
    let mut g = 0;
    while g < groups {
        if len(g) >= SMALL_GROUP {
            tasks.push((g, g + 1));
            g += 1;
            continue;
        }
        let start = g;
        let mut rows = 0;
        while g < groups && len(g) < SMALL_GROUP && rows < BLOCK_ROWS {
            rows += len(g);
            g += 1;
        }
        tasks.push((start, g));
    }
    tasks
}

/// Spearman rho per group.
pub fn spearman_grouped(x: &[f64], y: &[f64], offsets: &[i64], nan: NanPolicy) -> Result<Vec<f64>> {
    correlation_grouped(x, y, offsets, nan, Statistic::Spearman)
}

/// Kendall tau-b per group.
pub fn kendall_tau_b_grouped(
    x: &[f64],
    y: &[f64],
    offsets: &[i64],
    nan: NanPolicy,
) -> Result<Vec<f64>> {
    correlation_grouped(x, y, offsets, nan, Statistic::KendallTauB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scipy_reference_values() {
        // scipy.stats.spearmanr([1,2,2,3,4,4,4,5], [2,1,3,3,5,4,4,6]) and kendalltau.
        let x = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0];
        let y = [2.0, 1.0, 3.0, 3.0, 5.0, 4.0, 4.0, 6.0];
        let rho = spearman(&x, &y, NanPolicy::Propagate).unwrap();
        let tau = kendall_tau_b(&x, &y, NanPolicy::Propagate).unwrap();
        assert!((rho - 0.925_626_545_313_669_2).abs() < 1e-12, "{rho}");
        assert!((tau - 0.840_672_807_476_707_6).abs() < 1e-12, "{tau}");
    }

    #[test]
    fn degenerate_inputs_are_nan() {
        let p = NanPolicy::Propagate;
        assert!(spearman(&[], &[], p).unwrap().is_nan());
        assert!(spearman(&[1.0], &[2.0], p).unwrap().is_nan());
        assert!(spearman(&[0.0, -0.0], &[1.0, 2.0], p).unwrap().is_nan());
        assert!(kendall_tau_b(&[1.0, 2.0], &[3.0, 3.0], p).unwrap().is_nan());
        assert!(spearman(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0], p)
            .unwrap()
            .is_nan());
        let omit = spearman(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0], NanPolicy::Omit).unwrap();
        assert_eq!(omit, 1.0);
    }

    #[test]
    fn offsets_are_checked() {
        assert!(check_offsets(&[], 0).is_err());
        assert!(check_offsets(&[1, 2], 2).is_err());
        assert!(check_offsets(&[0, 2, 1, 3], 3).is_err());
        assert!(check_offsets(&[0, 4], 3).is_err());
        assert_eq!(check_offsets(&[0], 0).unwrap(), 0);
        assert_eq!(check_offsets(&[0, 0, 3], 3).unwrap(), 2);
    }
}
