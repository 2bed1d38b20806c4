//! Spearman rho and Kendall tau-b from dense ranks (see `dense.rs`).
//!
//! Both are computed in exact integer arithmetic up to the final division: twice a centered
//! average rank is an integer, so Spearman's sums of products are exact (i64 per chunk,
//! i128 across chunks), and Kendall's pair counts are integers by nature. The only rounding
//! is the last few floating-point operations, which keeps results within a few ulps of the
//! exact value however large n is.

use super::dense::{Dense, PAR_MIN_LEN};
use rayon::prelude::*;

/// Rows per exact i64 partial sum: |term| <= n^2, so 2^16 terms stay far below i64::MAX
/// for any n below 10^7 and below it for n up to ~1.1e7; above that chunks shrink.
fn exact_chunk(n: usize) -> usize {
    let n2 = (n as u128).max(1).pow(2);
    let fit = (i64::MAX as u128 / n2).max(1) as usize;
    fit.min(1 << 16)
}

/// Below this many rows the i64 fast path of [`spearman_dense`] is exact.
const SMALL_EXACT: usize = 1 << 20;

/// Spearman rho of two dense-ranked sides of equal length (n >= 2 checked by the caller).
pub(crate) fn spearman_dense(x: &Dense, y: &Dense, cx: &mut Vec<i64>, cy: &mut Vec<i64>) -> f64 {
    let n = x.ids.len();
    if n < 2 || x.k() < 2 || y.k() < 2 {
        return f64::NAN;
    }
    x.centered2(cx);
    y.centered2(cy);
    let (cx, cy) = (&cx[..], &cy[..]);
    if n < SMALL_EXACT {
        // Every partial sum is below n^3 < 2^60: plain i64 is exact.
        let sxy: i64 = x
            .ids
            .iter()
            .zip(&y.ids)
            .map(|(&a, &b)| cx[a as usize] * cy[b as usize])
            .sum();
        let sq = |counts: &[u64], c: &[i64]| -> i64 {
            counts.iter().zip(c).map(|(&k, &v)| k as i64 * v * v).sum()
        };
        return finish_pearson(
            sxy as f64,
            sq(&x.counts, cx) as f64,
            sq(&y.counts, cy) as f64,
        );
    }
    let chunk = exact_chunk(n);
    let partial = |ix: &[u32], iy: &[u32]| -> i128 {
        let mut s = 0i64;
        for (&a, &b) in ix.iter().zip(iy) {
            s += cx[a as usize] * cy[b as usize];
        }
        s as i128
    };
    let sxy: i128 = if n >= PAR_MIN_LEN {
        x.ids
            .par_chunks(chunk)
            .zip(y.ids.par_chunks(chunk))
            .map(|(a, b)| partial(a, b))
            .sum()
    } else {
        x.ids
            .chunks(chunk)
            .zip(y.ids.chunks(chunk))
            .map(|(a, b)| partial(a, b))
            .sum()
    };
    let sxx = sum_sq(&x.counts, cx);
    let syy = sum_sq(&y.counts, cy);
    finish_pearson(sxy as f64, sxx as f64, syy as f64)
}

fn sum_sq(counts: &[u64], c: &[i64]) -> i128 {
    counts
        .iter()
        .zip(c)
        .map(|(&k, &v)| k as i128 * (v as i128) * (v as i128))
        .sum()
}

/// sxy / sqrt(sxx * syy), NaN for a constant side, clipped to [-1, 1] as scipy does.
pub(crate) fn finish_pearson(sxy: f64, sxx: f64, syy: f64) -> f64 {
    if sxx <= 0.0 || syy <= 0.0 {
        return f64::NAN;
    }
    // sqrt of the product: sqrt(a * a) == a exactly, so rho(x, x) is exactly 1.
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
}

/// tau-b from (concordant - discordant) and tie counts.
pub(crate) fn finish_tau_b(con_minus_dis: f64, tot: f64, xtie: f64, ytie: f64) -> f64 {
    if xtie >= tot || ytie >= tot {
        return f64::NAN;
    }
    // One sqrt of the product (scipy divides twice): symmetric in x and y, and exactly 1
    // for tau(x, x); within an ulp or two of scipy otherwise.
    (con_minus_dis / ((tot - xtie) * (tot - ytie)).sqrt()).clamp(-1.0, 1.0)
}

/// Largest contingency table (kx * ky cells) Kendall builds instead of sorting rows.
const TABLE_MAX: usize = 1 << 22;

/// Kendall tau-b of two dense-ranked sides of equal length.
pub(crate) fn kendall_dense(x: &Dense, y: &Dense, buf: &mut Vec<u64>) -> f64 {
    let n = x.ids.len();
    if n < 2 || x.k() < 2 || y.k() < 2 {
        return f64::NAN;
    }
    let tot = (n as i64) * (n as i64 - 1) / 2;
    let (xtie, ytie) = (x.tie_pairs(), y.tie_pairs());
    let cells = x.k() * y.k();
    // Discrete scores: O(n + kx*ky) on the contingency table beats O(n log n) sorting
    // whenever the table is no bigger than a couple of rows per cell.
    let (cmd, _ntie) = if cells <= TABLE_MAX && cells <= 2 * n + 64 {
        table_con_minus_dis(x, y)
    } else {
        knight_con_minus_dis(x, y, buf)
    };
    finish_tau_b(cmd as f64, tot as f64, xtie as f64, ytie as f64)
}

/// (concordant - discordant, joint tie pairs) from the kx x ky table of counts.
fn table_con_minus_dis(x: &Dense, y: &Dense) -> (i64, i64) {
    let (kx, ky) = (x.k(), y.k());
    let n = x.ids.len();
    let build = |ix: &[u32], iy: &[u32]| {
        let mut t = vec![0u64; kx * ky];
        for (&a, &b) in ix.iter().zip(iy) {
            t[a as usize * ky + b as usize] += 1;
        }
        t
    };
    let table = if n >= PAR_MIN_LEN {
        x.ids
            .par_chunks(1 << 16)
            .zip(y.ids.par_chunks(1 << 16))
            .map(|(a, b)| build(a, b))
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(p, q)| *p += q);
                a
            })
            .unwrap_or_default()
    } else {
        build(&x.ids, &y.ids)
    };
    let w: Vec<i64> = table.iter().map(|&c| c as i64).collect();
    weighted_table_cmd(&w, kx, ky)
}

/// (concordant - discordant, joint tie pairs) for a row-major kx x ky table of weights.
pub(crate) fn weighted_table_cmd(table: &[i64], kx: usize, ky: usize) -> (i64, i64) {
    // above[j]: weight in earlier x rows with y id == j. For a cell (i, j) the earlier rows
    // with smaller y are concordant, with larger y discordant.
    // Stack buffer for the common small table: this runs once per group or per resample.
    let mut small = [0i64; 64];
    let mut heap;
    let above: &mut [i64] = if ky <= small.len() {
        &mut small[..ky]
    } else {
        heap = vec![0i64; ky];
        &mut heap
    };
    let mut total_above = 0i64;
    let mut cmd = 0i64;
    let mut ntie = 0i64;
    for i in 0..kx {
        let row = &table[i * ky..(i + 1) * ky];
        let mut below_j = 0i64;
        for (j, &c) in row.iter().enumerate() {
            if c != 0 {
                let greater = total_above - below_j - above[j];
                cmd += c * (below_j - greater);
                ntie += c * (c - 1) / 2;
            }
            below_j += above[j];
        }
        for (a, &c) in above.iter_mut().zip(row) {
            *a += c;
            total_above += c;
        }
    }
    (cmd, ntie)
}

/// Knight's O(n log n) algorithm: sort rows by (x, y), then the discordant pairs are the
/// inversions of the y sequence, counted by a merge sort.
fn knight_con_minus_dis(x: &Dense, y: &Dense, buf: &mut Vec<u64>) -> (i64, i64) {
    let n = x.ids.len();
    buf.clear();
    buf.extend(
        x.ids
            .iter()
            .zip(&y.ids)
            .map(|(&a, &b)| ((a as u64) << 32) | b as u64),
    );
    if n >= PAR_MIN_LEN {
        buf.par_sort_unstable();
    } else {
        buf.sort_unstable();
    }
    let mut ntie = 0i64;
    let mut run = 1i64;
    for w in buf.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            ntie += run * (run - 1) / 2;
            run = 1;
        }
    }
    ntie += run * (run - 1) / 2;
    let mut ys: Vec<u32> = buf.iter().map(|&k| k as u32).collect();
    let dis = count_inversions(&mut ys);
    let tot = (n as i64) * (n as i64 - 1) / 2;
    let cmd = tot - x.tie_pairs() - y.tie_pairs() + ntie - 2 * dis;
    (cmd, ntie)
}

/// Number of pairs i < j with v[i] > v[j] (equal values are not inversions); sorts `v`.
pub(crate) fn count_inversions(v: &mut [u32]) -> i64 {
    let n = v.len();
    let mut tmp = vec![0u32; n];
    let mut inv = 0i64;
    // Bottom-up merge sort; small runs first sorted by insertion to cut passes.
    const RUN: usize = 16;
    for chunk in v.chunks_mut(RUN) {
        for i in 1..chunk.len() {
            let mut j = i;
            while j > 0 && chunk[j - 1] > chunk[j] {
                chunk.swap(j - 1, j);
                inv += 1;
                j -= 1;
            }
        }
    }
    let mut width = RUN;
    let (mut src, mut dst) = (v, &mut tmp[..]);
    let mut in_tmp = false;
    while width < n {
        for start in (0..n).step_by(2 * width) {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if src[j] < src[i] {
                    inv += (mid - i) as i64;
                    dst[k] = src[j];
                    j += 1;
                } else {
                    dst[k] = src[i];
                    i += 1;
                }
                k += 1;
            }
            dst[k..k + (mid - i)].copy_from_slice(&src[i..mid]);
            k += mid - i;
            dst[k..k + (end - j)].copy_from_slice(&src[j..end]);
        }
        std::mem::swap(&mut src, &mut dst);
        in_tmp = !in_tmp;
        width *= 2;
    }
    if in_tmp {
        dst.copy_from_slice(src);
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inversions_match_quadratic_count() {
        let mut state = 12345u64;
        for n in [0usize, 1, 2, 15, 16, 17, 100, 1000] {
            let v: Vec<u32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 20) as u32
                })
                .collect();
            let mut expect = 0i64;
            for i in 0..n {
                for j in i + 1..n {
                    expect += (v[i] > v[j]) as i64;
                }
            }
            let mut w = v.clone();
            assert_eq!(count_inversions(&mut w), expect, "n={n}");
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(w, sorted);
        }
    }
}
