//! The bootstrap's data representation: the contingency table of one group.
//!
//! A rank statistic depends on the data only through the multiset of (x rank, y rank)
//! pairs, so a group is reduced once to its non-empty contingency *cells* (distinct
//! (x value, y value) pairs, sorted) and every resample is just a vector of cell counts.
//! Ranks of a resample then come from prefix sums over the distinct values: no resample is
//! ever sorted, and the per-resample cost is O(draws + cells) instead of O(n log n). With
//! this domain's discrete scores (a 0.1 grid gives at most 121 cells) a resample of 200
//! rows costs ~200 counter increments plus ~150 cells of arithmetic.
//!
//! Resampling units are rows or whole item clusters; each unit is the list of (cell, count)
//! it adds to a resample.
//!
//! Cell counts of a row resample could also be drawn directly as Multinomial(n, base / n)
//! through K conditional binomials. That only pays when n is far above the number of
//! cells times the cost of a binomial draw (tens of thousands of rows per slice); gate and
//! monitor slices hold tens to thousands of rows, where n uniform draws (~1 ns each) are
//! cheaper and exact, so rows are drawn. Cluster resamples cannot use it at all (clusters
//! differ in size and content).

use crate::rank::corr::{finish_pearson, finish_tau_b, weighted_table_cmd};
use crate::rank::dense::Dense;
use crate::rank::Statistic;

/// Non-empty cells of one group's contingency table, sorted by (x id, y id).
#[derive(Debug, Default)]
pub(crate) struct Cells {
    pub cx: Vec<u32>,
    pub cy: Vec<u32>,
    pub kx: usize,
    pub ky: usize,
}

impl Cells {
    /// Cells of (dx, dy) and the cell of each row.
    pub fn build(dx: &Dense, dy: &Dense) -> (Cells, Vec<u32>) {
        let keys: Vec<u64> = dx
            .ids
            .iter()
            .zip(&dy.ids)
            .map(|(&a, &b)| ((a as u64) << 32) | b as u64)
            .collect();
        let mut uniq = keys.clone();
        uniq.sort_unstable();
        uniq.dedup();
        let row_cell = keys
            .iter()
            .map(|k| uniq.binary_search(k).expect("row key is a cell") as u32)
            .collect();
        let cells = Cells {
            cx: uniq.iter().map(|&k| (k >> 32) as u32).collect(),
            cy: uniq.iter().map(|&k| k as u32).collect(),
            kx: dx.k(),
            ky: dy.k(),
        };
        (cells, row_cell)
    }

    pub fn len(&self) -> usize {
        self.cx.len()
    }
}

/// What one draw of a resampling unit adds.
#[derive(Debug)]
pub(crate) enum Units {
    /// Unit i is row i, which adds one to cell `row_cell[i]`.
    Rows(Vec<u32>),
    /// Unit i (a cluster) adds `entries[starts[i]..starts[i + 1]]` as (cell, count).
    Clusters {
        starts: Vec<u32>,
        entries: Vec<(u32, u32)>,
    },
}

impl Units {
    pub fn count(&self) -> usize {
        match self {
            Units::Rows(r) => r.len(),
            Units::Clusters { starts, .. } => starts.len() - 1,
        }
    }

    /// Group rows by cluster (`members[u]` lists unit u's rows) and map them to cells.
    pub fn clusters(members: &[Vec<u32>], row_cell: &[u32]) -> Units {
        let mut starts = vec![0u32];
        let mut entries = Vec::new();
        let mut cells: Vec<u32> = Vec::new();
        for rows in members {
            cells.clear();
            cells.extend(rows.iter().map(|&r| row_cell[r as usize]));
            cells.sort_unstable();
            let mut i = 0;
            while i < cells.len() {
                let j = i + cells[i..].iter().take_while(|&&c| c == cells[i]).count();
                entries.push((cells[i], (j - i) as u32));
                i = j;
            }
            starts.push(entries.len() as u32);
        }
        Units::Clusters { starts, entries }
    }

    /// Add unit `u` to the cell weights `w` with sign `sign` (+1 draw, -1 jackknife).
    #[inline]
    pub fn add(&self, u: usize, w: &mut [i64], sign: i64) {
        match self {
            Units::Rows(rc) => w[rc[u] as usize] += sign,
            Units::Clusters { starts, entries } => {
                for &(c, k) in &entries[starts[u] as usize..starts[u + 1] as usize] {
                    w[c as usize] += sign * k as i64;
                }
            }
        }
    }
}

/// Per-thread buffers for statistics on cell weights.
#[derive(Debug, Default)]
pub(crate) struct StatBuf {
    wx: Vec<i64>,
    wy: Vec<i64>,
    ax: Vec<f64>,
    ay: Vec<f64>,
    table: Vec<i64>,
    bit: Vec<i64>,
}

/// The statistic of the sample whose cell counts are `w`.
pub(crate) fn stat_on_cells(cells: &Cells, w: &[i64], stat: Statistic, b: &mut StatBuf) -> f64 {
    b.wx.clear();
    b.wx.resize(cells.kx, 0);
    b.wy.clear();
    b.wy.resize(cells.ky, 0);
    let mut n = 0i64;
    for ((&cx, &cy), &c) in cells.cx.iter().zip(&cells.cy).zip(w) {
        b.wx[cx as usize] += c;
        b.wy[cy as usize] += c;
        n += c;
    }
    if n < 2 {
        return f64::NAN;
    }
    match stat {
        Statistic::Spearman => spearman_cells(cells, w, n, b),
        Statistic::KendallTauB => kendall_cells(cells, w, n, b),
    }
}

/// Twice the centered average rank per distinct value (exact in f64 below 2^53), and the
/// sum of squares over the sample.
fn centered(weights: &[i64], n: i64, out: &mut Vec<f64>) -> f64 {
    out.clear();
    let mut cum = 0i64;
    let mut ss = 0.0;
    for &c in weights {
        let a = (2 * cum + c - n) as f64;
        out.push(a);
        ss += c as f64 * a * a;
        cum += c;
    }
    ss
}

fn spearman_cells(cells: &Cells, w: &[i64], n: i64, b: &mut StatBuf) -> f64 {
    let sxx = centered(&b.wx, n, &mut b.ax);
    let syy = centered(&b.wy, n, &mut b.ay);
    let mut sxy = 0.0;
    for ((&cx, &cy), &c) in cells.cx.iter().zip(&cells.cy).zip(w) {
        sxy += c as f64 * b.ax[cx as usize] * b.ay[cy as usize];
    }
    finish_pearson(sxy, sxx, syy)
}

fn tie_pairs(weights: &[i64]) -> i64 {
    weights.iter().map(|&t| t * (t - 1) / 2).sum()
}

fn kendall_cells(cells: &Cells, w: &[i64], n: i64, b: &mut StatBuf) -> f64 {
    let (kx, ky) = (cells.kx, cells.ky);
    let cmd = if kx * ky <= 4 * cells.len() + 64 {
        // Small dense table (discrete scores): O(kx * ky).
        b.table.clear();
        b.table.resize(kx * ky, 0);
        for ((&cx, &cy), &c) in cells.cx.iter().zip(&cells.cy).zip(w) {
            b.table[cx as usize * ky + cy as usize] = c;
        }
        weighted_table_cmd(&b.table, kx, ky).0
    } else {
        fenwick_cmd(cells, w, &mut b.bit)
    };
    let tot = n * (n - 1) / 2;
    finish_tau_b(
        cmd as f64,
        tot as f64,
        tie_pairs(&b.wx) as f64,
        tie_pairs(&b.wy) as f64,
    )
}

/// concordant - discordant over sparse cells sorted by (x, y): a Fenwick tree over y ids
/// holds the weight of all cells with a smaller x id. O(cells log ky).
fn fenwick_cmd(cells: &Cells, w: &[i64], bit: &mut Vec<i64>) -> i64 {
    let ky = cells.ky;
    bit.clear();
    bit.resize(ky + 1, 0);
    let prefix = |bit: &[i64], mut i: usize| {
        let mut s = 0;
        while i > 0 {
            s += bit[i];
            i &= i - 1;
        }
        s
    };
    let mut total = 0i64;
    let mut cmd = 0i64;
    let mut start = 0;
    let m = cells.len();
    while start < m {
        let x = cells.cx[start];
        let mut end = start;
        while end < m && cells.cx[end] == x {
            let c = w[end];
            if c != 0 {
                let y = cells.cy[end] as usize;
                let less = prefix(bit, y);
                let greater = total - prefix(bit, y + 1);
                cmd += c * (less - greater);
            }
            end += 1;
        }
        for (&c, &y) in w[start..end].iter().zip(&cells.cy[start..end]) {
            if c != 0 {
                let mut j = y as usize + 1;
                while j <= ky {
                    bit[j] += c;
                    j += j & j.wrapping_neg();
                }
                total += c;
            }
        }
        start = end;
    }
    cmd
}
