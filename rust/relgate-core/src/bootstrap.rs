//! Bootstrap uncertainty for rank statistics, per group: percentile and BCa confidence
//! intervals, and the paired (item-cluster) bootstrap of the difference between two
//! releases scored on the same rows.
//!
//! Determinism: resamples of group `g` are drawn in fixed blocks of [`BLOCK`]; block `b`
//! uses a Xoshiro256++ stream seeded from (seed, g, b) through SplitMix64. Blocks and groups
//! may run on any thread in any order and the result is bit-identical for every thread
//! count.
//!
//! Rows with a NaN on either side (any of the three arrays in the paired case) are
//! omitted; `n` reports the rows used. A resample whose statistic is undefined (one side
//! constant) is left out of the interval; a group whose own statistic is undefined gets
//! NaN everywhere.

pub(crate) mod cells;
pub mod normal;

use crate::error::{CoreError, Result};
use crate::rank::dense::{dense_rank, Dense, Scratch};
use crate::rank::{check_lengths, check_offsets, NanPolicy, Statistic, Work};
use cells::{stat_on_cells, Cells, StatBuf, Units};
use normal::{ndtr, ndtri};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::str::FromStr;

/// Resamples per random stream.
pub const BLOCK: usize = 64;

/// How the interval is read off the bootstrap distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod {
    Percentile,
    /// Bias-corrected and accelerated (Efron 1987; as scipy.stats.bootstrap).
    Bca,
}

impl FromStr for CiMethod {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "percentile" => Ok(Self::Percentile),
            "bca" | "BCa" => Ok(Self::Bca),
            other => Err(CoreError::invalid(format!(
                "unknown method {other:?}: expected \"percentile\" or \"bca\""
            ))),
        }
    }
}

/// Settings shared by both bootstraps.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapConfig {
    pub statistic: Statistic,
    pub n_resamples: usize,
    pub confidence: f64,
    pub method: CiMethod,
    pub seed: u64,
}

impl BootstrapConfig {
    fn validate(&self) -> Result<()> {
        if self.n_resamples < 1 {
            return Err(CoreError::invalid("n_resamples must be at least 1"));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(CoreError::invalid(format!(
                "confidence must be in (0, 1), got {}",
                self.confidence
            )));
        }
        Ok(())
    }
}

/// Per-group point estimate and two-sided interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intervals {
    /// Bootstrap p-value for H0: statistic >= threshold, per group (empty without thresholds;
    /// NaN for an undefined estimate or threshold).
    pub p_below: Vec<f64>,
    pub estimate: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// Rows used per group after NaN omission.
    pub n: Vec<i64>,
}

/// Per-group paired difference (new - old), its interval and its one-sided p-values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairedIntervals {
    pub estimate: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// Bootstrap p-value for H0: diff <= -margin: (#{resampled diff <= -margin} + 1) / (B + 1).
    /// Small: the new release is shown not worse than the margin (non-inferiority).
    pub p_value: Vec<f64>,
    /// Bootstrap p-value for H0: diff >= -margin: (#{resampled diff >= -margin} + 1) / (B + 1).
    /// Small: the new release is shown worse than the margin (evidence of harm).
    pub p_worse: Vec<f64>,
    pub n: Vec<i64>,
}

/// One-sided bootstrap p-values at `t` from the sorted finite resamples, with the +1
/// correction that keeps them valid: (#{s <= t} + 1) / (B + 1) for H0: statistic <= t, and
/// (#{s >= t} + 1) / (B + 1) for H0: statistic >= t. Resamples equal to `t` count for both.
fn tail_pvalues(sorted: &[f64], t: f64) -> (f64, f64) {
    let b = sorted.len() as f64;
    let below = sorted.partition_point(|&s| s < t);
    let at_or_below = sorted.partition_point(|&s| s <= t);
    let at_or_above = sorted.len() - below;
    (
        (at_or_below as f64 + 1.0) / (b + 1.0),
        (at_or_above as f64 + 1.0) / (b + 1.0),
    )
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of (seed, group, block).
fn stream(seed: u64, group: usize, block: usize) -> Xoshiro256PlusPlus {
    let s = splitmix(splitmix(splitmix(seed) ^ group as u64) ^ block as u64);
    Xoshiro256PlusPlus::seed_from_u64(s)
}

/// Uniform integers in [0, m), m >= 1: Lemire's multiply-shift with rejection (unbiased),
/// fed 32 random bits at a time so one `next_u64` gives two draws.
#[derive(Clone, Copy)]
struct Uniform {
    m: u32,
    /// Low products below this are rejected: (2^32 - m) mod m.
    threshold: u32,
}

impl Uniform {
    fn new(m: u32) -> Self {
        Uniform {
            m,
            threshold: m.wrapping_neg() % m,
        }
    }

    /// Map 32 random bits to [0, m); draws afresh from `rng` in the rare rejected case.
    #[inline(always)]
    fn pick(self, bits: u32, rng: &mut Xoshiro256PlusPlus) -> usize {
        let prod = bits as u64 * self.m as u64;
        if (prod as u32) < self.threshold {
            return self.pick(rng.next_u32(), rng);
        }
        (prod >> 32) as usize
    }
}

/// One group reduced to contingency cells, for one or two x sides sharing y and units.
struct Prepared {
    sides: Vec<(Cells, Units, Vec<i64>)>,
    /// The statistic of each side on all rows, by the exact rank path, so an estimate is
    /// bit-for-bit the grouped point statistic with NaN pairs omitted.
    estimates: Vec<f64>,
    n: usize,
    units: usize,
}

/// Rows of one group with no NaN in any column, and their clusters.
fn clean_rows(cols: &[&[f64]], clusters: Option<&[i64]>) -> (Vec<Vec<f64>>, Vec<i64>) {
    let len = cols[0].len();
    let keep: Vec<usize> = (0..len)
        .filter(|&r| cols.iter().all(|c| !c[r].is_nan()))
        .collect();
    let data = cols
        .iter()
        .map(|c| keep.iter().map(|&r| c[r]).collect())
        .collect();
    let cl = clusters.map_or_else(Vec::new, |c| keep.iter().map(|&r| c[r]).collect());
    (data, cl)
}

/// `xs` are one or two x columns; y is shared. Clusters (if any) group rows into units.
fn prepare(xs: &[&[f64]], y: &[f64], clusters: Option<&[i64]>, stat: Statistic) -> Prepared {
    let mut cols: Vec<&[f64]> = xs.to_vec();
    cols.push(y);
    let (data, cl) = clean_rows(&cols, clusters);
    let n = data[0].len();
    let mut scratch = Scratch::default();
    let mut dy = Dense::default();
    dense_rank(&data[xs.len()], &mut dy, &mut scratch);
    let members: Option<Vec<Vec<u32>>> = clusters.map(|_| {
        let mut order: Vec<(i64, u32)> =
            cl.iter().enumerate().map(|(r, &c)| (c, r as u32)).collect();
        order.sort_unstable();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut prev = None;
        for (c, r) in order {
            if prev != Some(c) {
                members.push(Vec::new());
                prev = Some(c);
            }
            members.last_mut().expect("pushed").push(r);
        }
        members
    });
    let mut sides = Vec::new();
    for col in &data[..xs.len()] {
        let mut dx = Dense::default();
        dense_rank(col, &mut dx, &mut scratch);
        let (cells, row_cell) = Cells::build(&dx, &dy);
        let mut base = vec![0i64; cells.len()];
        for &c in &row_cell {
            base[c as usize] += 1;
        }
        let units = match &members {
            Some(m) => Units::clusters(m, &row_cell),
            None => Units::Rows(row_cell),
        };
        sides.push((cells, units, base));
    }
    let units = sides[0].1.count();
    let mut work = Work::default();
    let estimates = data[..xs.len()]
        .iter()
        .map(|col| work.compute(col, &data[xs.len()], NanPolicy::Propagate, stat))
        .collect();
    Prepared {
        sides,
        estimates,
        n,
        units,
    }
}

/// Run `n_resamples` resamples of one group; `f(buf, weights per side)` gives the value.
fn resample<F>(prep: &Prepared, cfg: &BootstrapConfig, group: usize, f: F) -> Vec<f64>
where
    F: Fn(&mut StatBuf, &[Vec<i64>]) -> f64 + Sync,
{
    let mut out = vec![f64::NAN; cfg.n_resamples];
    let m = prep.units;
    let uni = Uniform::new(m as u32);
    out.par_chunks_mut(BLOCK).enumerate().for_each_init(
        || {
            let w: Vec<Vec<i64>> = prep.sides.iter().map(|s| vec![0; s.0.len()]).collect();
            (StatBuf::default(), w)
        },
        |(buf, w), (block, chunk)| {
            let mut rng = stream(cfg.seed, group, block);
            for o in chunk.iter_mut() {
                w.iter_mut().for_each(|v| v.fill(0));
                match (&prep.sides[..], &mut w[..]) {
                    // The hot case (one side, rows as units): a tight loop of two draws per
                    // 64 random bits, each one counter increment.
                    ([(_, Units::Rows(rc), _)], [w0]) => {
                        for _ in 0..m / 2 {
                            let r = rng.next_u64();
                            w0[rc[uni.pick(r as u32, &mut rng)] as usize] += 1;
                            w0[rc[uni.pick((r >> 32) as u32, &mut rng)] as usize] += 1;
                        }
                        if m % 2 == 1 {
                            let bits = rng.next_u32();
                            w0[rc[uni.pick(bits, &mut rng)] as usize] += 1;
                        }
                    }
                    (sides, ws) => {
                        for _ in 0..m {
                            let bits = rng.next_u32();
                            let u = uni.pick(bits, &mut rng);
                            for ((_, units, _), wi) in sides.iter().zip(ws.iter_mut()) {
                                units.add(u, wi, 1);
                            }
                        }
                    }
                }
                *o = f(buf, w);
            }
        },
    );
    out
}

/// Linear-interpolation quantile of sorted finite values (numpy's default method).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() || p.is_nan() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn sorted_finite(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|a| !a.is_nan()).collect();
    s.sort_unstable_by(f64::total_cmp);
    s
}

/// BCa acceleration from jackknife (leave one unit out) values and their multiplicities.
fn acceleration(jack: &[(f64, f64)]) -> f64 {
    let total: f64 = jack.iter().map(|j| j.1).sum();
    let mean = jack.iter().map(|j| j.0 * j.1).sum::<f64>() / total;
    let (mut s2, mut s3) = (0.0, 0.0);
    for &(v, k) in jack {
        let d = mean - v;
        s2 += k * d * d;
        s3 += k * d * d * d;
    }
    let a = s3 / (6.0 * s2.powf(1.5));
    // A degenerate jackknife (all values equal, or undefined ones) carries no skewness
    // information: fall back to the bias-corrected interval (a = 0).
    if a.is_finite() {
        a
    } else {
        0.0
    }
}

/// Most cell updates the exact jackknife may cost before BCa switches to a delete-a-group
/// jackknife (about 20-50 ms of work).
const JACKKNIFE_BUDGET: usize = 1 << 24;
/// Fewest groups of the delete-a-group jackknife.
const JACKKNIFE_MIN_GROUPS: usize = 100;

/// Leave-out values of the statistic (with multiplicities) for the BCa acceleration.
fn jackknife(prep: &Prepared, stat: Statistic) -> Vec<(f64, f64)> {
    let (cells, units, base) = &prep.sides[0];
    let k = cells.len().max(1);
    let m = units.count();
    let init = || (base.clone(), StatBuf::default());
    match units {
        // Rows in the same cell leave identical samples behind: one value per cell,
        // weighted by its count (O(cells^2) instead of O(n * cells)).
        Units::Rows(_) if k * k <= JACKKNIFE_BUDGET => (0..cells.len())
            .into_par_iter()
            .map_init(init, |(w, buf), c| {
                w[c] -= 1;
                let v = stat_on_cells(cells, w, stat, buf);
                w[c] += 1;
                (v, base[c] as f64)
            })
            .collect(),
        Units::Clusters { .. } if m * k <= JACKKNIFE_BUDGET => (0..m)
            .into_par_iter()
            .map_init(init, |(w, buf), u| {
                units.add(u, w, -1);
                let v = stat_on_cells(cells, w, stat, buf);
                units.add(u, w, 1);
                (v, 1.0)
            })
            .collect(),
        // Too many distinct cells (continuous scores, large n): delete-a-group jackknife
        // over G interleaved groups of units (unit u in group u % G). A group's leave-out
        // shift is the sum of its units' influences, whose third and second cumulants both
        // grow with the group size, so the acceleration (a standardized skewness) has the
        // same expectation as with single deletions, at G / n of the cost.
        _ => {
            let g = (JACKKNIFE_BUDGET / k).clamp(JACKKNIFE_MIN_GROUPS, m.max(1));
            group_jackknife(prep, stat, g)
        }
    }
}

/// Delete-a-group jackknife with `g` groups of units (unit u in group u % g).
fn group_jackknife(prep: &Prepared, stat: Statistic, g: usize) -> Vec<(f64, f64)> {
    let (cells, units, base) = &prep.sides[0];
    let m = units.count();
    (0..g)
        .into_par_iter()
        .map_init(
            || (base.clone(), StatBuf::default()),
            |(w, buf), j| {
                (j..m).step_by(g).for_each(|u| units.add(u, w, -1));
                let v = stat_on_cells(cells, w, stat, buf);
                (j..m).step_by(g).for_each(|u| units.add(u, w, 1));
                (v, 1.0)
            },
        )
        .collect()
}

fn interval(prep: &Prepared, cfg: &BootstrapConfig, estimate: f64, boot: &[f64]) -> (f64, f64) {
    let sorted = sorted_finite(boot);
    let alpha = (1.0 - cfg.confidence) / 2.0;
    let (p_lo, p_hi) = match cfg.method {
        CiMethod::Percentile => (alpha, 1.0 - alpha),
        CiMethod::Bca => {
            let b = sorted.len() as f64;
            let below = sorted.iter().filter(|&&v| v < estimate).count() as f64;
            let at_or_below = sorted.iter().filter(|&&v| v <= estimate).count() as f64;
            let z0 = ndtri((below + at_or_below) / (2.0 * b));
            let a = acceleration(&jackknife(prep, cfg.statistic));
            let za = ndtri(alpha);
            let adj = |z: f64| {
                let num = z0 + z;
                ndtr(z0 + num / (1.0 - a * num))
            };
            (adj(za), adj(-za))
        }
    };
    (quantile(&sorted, p_lo), quantile(&sorted, p_hi))
}

fn group_ranges(
    offsets: &[i64],
) -> impl IndexedParallelIterator<Item = (usize, usize, usize)> + '_ {
    (0..offsets.len() - 1)
        .into_par_iter()
        .map(|g| (g, offsets[g] as usize, offsets[g + 1] as usize))
}

/// Bootstrap CI of a rank statistic per group. With `clusters` (aligned with `x`), whole
/// clusters are resampled within each group.
pub fn bootstrap_ci_grouped(
    x: &[f64],
    y: &[f64],
    offsets: &[i64],
    clusters: Option<&[i64]>,
    cfg: &BootstrapConfig,
) -> Result<Intervals> {
    bootstrap_ci_grouped_below(x, y, offsets, clusters, cfg, None)
}

/// [`bootstrap_ci_grouped`] plus, per group, the bootstrap p-value for H0: statistic >=
/// `thresholds[g]` (`(#{resampled >= t} + 1) / (B + 1)`: small when the statistic is shown
/// below its threshold). Without thresholds, or for an undefined estimate or threshold, the
/// p-value is NaN.
pub fn bootstrap_ci_grouped_below(
    x: &[f64],
    y: &[f64],
    offsets: &[i64],
    clusters: Option<&[i64]>,
    cfg: &BootstrapConfig,
    thresholds: Option<&[f64]>,
) -> Result<Intervals> {
    if let Some(t) = thresholds {
        if t.len() + 1 != offsets.len() {
            return Err(CoreError::invalid(format!(
                "thresholds has {} entries for {} groups",
                t.len(),
                offsets.len().saturating_sub(1)
            )));
        }
    }
    let mut lens = vec![("x", x.len()), ("y", y.len())];
    if let Some(c) = clusters {
        lens.push(("clusters", c.len()));
    }
    check_lengths(&lens)?;
    check_offsets(offsets, x.len())?;
    cfg.validate()?;
    let per_group: Vec<(f64, f64, f64, f64, i64)> = group_ranges(offsets)
        .map(|(g, a, b)| {
            let prep = prepare(
                &[&x[a..b]],
                &y[a..b],
                clusters.map(|c| &c[a..b]),
                cfg.statistic,
            );
            let est = prep.estimates[0];
            if est.is_nan() {
                return (f64::NAN, f64::NAN, f64::NAN, f64::NAN, prep.n as i64);
            }
            let boot = resample(&prep, cfg, g, |buf, w| {
                stat_on_cells(&prep.sides[0].0, &w[0], cfg.statistic, buf)
            });
            let (lo, hi) = interval(&prep, cfg, est, &boot);
            let p_below = match thresholds.map(|t| t[g]) {
                Some(t) if t.is_finite() => tail_pvalues(&sorted_finite(&boot), t).1,
                _ => f64::NAN,
            };
            (est, lo, hi, p_below, prep.n as i64)
        })
        .collect();
    let mut out = Intervals::default();
    for (e, l, h, p, n) in per_group {
        out.estimate.push(e);
        out.low.push(l);
        out.high.push(h);
        if thresholds.is_some() {
            out.p_below.push(p);
        }
        out.n.push(n);
    }
    Ok(out)
}

/// Paired bootstrap of statistic(x_new, y) - statistic(x_old, y) per group, resampling
/// item clusters: every row of a drawn item enters both releases' resample together.
/// The interval is the percentile interval of the resampled differences.
pub fn paired_bootstrap_diff(
    x_new: &[f64],
    x_old: &[f64],
    y: &[f64],
    offsets: &[i64],
    clusters: &[i64],
    cfg: &BootstrapConfig,
    margin: f64,
) -> Result<PairedIntervals> {
    check_lengths(&[
        ("x_new", x_new.len()),
        ("x_old", x_old.len()),
        ("y", y.len()),
        ("clusters", clusters.len()),
    ])?;
    check_offsets(offsets, y.len())?;
    cfg.validate()?;
    if !margin.is_finite() {
        return Err(CoreError::invalid(format!(
            "margin must be finite, got {margin}"
        )));
    }
    let per_group: Vec<[f64; 6]> = group_ranges(offsets)
        .map(|(g, a, b)| {
            let prep = prepare(
                &[&x_new[a..b], &x_old[a..b]],
                &y[a..b],
                Some(&clusters[a..b]),
                cfg.statistic,
            );
            let n = prep.n as f64;
            let stat = |buf: &mut StatBuf, w: &[Vec<i64>]| {
                let new = stat_on_cells(&prep.sides[0].0, &w[0], cfg.statistic, buf);
                let old = stat_on_cells(&prep.sides[1].0, &w[1], cfg.statistic, buf);
                new - old
            };
            let est = prep.estimates[0] - prep.estimates[1];
            if est.is_nan() {
                return [f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, n];
            }
            let boot = resample(&prep, cfg, g, stat);
            let sorted = sorted_finite(&boot);
            let alpha = (1.0 - cfg.confidence) / 2.0;
            let (p, p_worse) = tail_pvalues(&sorted, -margin);
            [
                est,
                quantile(&sorted, alpha),
                quantile(&sorted, 1.0 - alpha),
                p,
                p_worse,
                n,
            ]
        })
        .collect();
    let mut out = PairedIntervals::default();
    for [e, l, h, p, pw, n] in per_group {
        out.estimate.push(e);
        out.low.push(l);
        out.high.push(h);
        out.p_value.push(p);
        out.p_worse.push(pw);
        out.n.push(n as i64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
