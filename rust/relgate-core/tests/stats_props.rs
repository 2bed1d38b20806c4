//! Invariants of the rank statistics (proptest), and agreement of every internal path
//! (counting ranks, sorting, contingency table, shared-block table, parallel chunks) with
//! naive reference implementations written here.

use proptest::prelude::*;
use relgate_core::rank::{
    kendall_tau_b, kendall_tau_b_grouped, spearman, spearman_grouped, NanPolicy,
};

const P: NanPolicy = NanPolicy::Propagate;

/// Tie-averaged ranks by sorting (1-based); -0.0 == 0.0 as for `==`.
fn avg_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].partial_cmp(&v[b]).unwrap());
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

fn ref_spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    pearson(&avg_ranks(x), &avg_ranks(y))
}

/// O(n^2) tau-b.
fn ref_kendall(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let (mut s, mut tx, mut ty, mut tot) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let a = if x[i] < x[j] {
                -1
            } else if x[i] > x[j] {
                1
            } else {
                0
            };
            let b = if y[i] < y[j] {
                -1
            } else if y[i] > y[j] {
                1
            } else {
                0
            };
            s += a * b;
            tot += 1;
            tx += (a == 0) as i64;
            ty += (b == 0) as i64;
        }
    }
    if tot == 0 || tx == tot || ty == tot {
        return f64::NAN;
    }
    s as f64 / (((tot - tx) as f64) * ((tot - ty) as f64)).sqrt()
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12
}

/// Values drawn from a small grid (ties, signed zeros, infinities) or continuous.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (0i32..11).prop_map(|k| k as f64 / 10.0),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        3 => -1e6f64..1e6,
    ]
}

fn pairs(max: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (0..max).prop_flat_map(|n| {
        (
            prop::collection::vec(value(), n),
            prop::collection::vec(value(), n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matches_reference((x, y) in pairs(300)) {
        let rho = spearman(&x, &y, P).unwrap();
        let tau = kendall_tau_b(&x, &y, P).unwrap();
        prop_assert!(close(rho, ref_spearman(&x, &y)), "rho {} vs {}", rho, ref_spearman(&x, &y));
        prop_assert!(close(tau, ref_kendall(&x, &y)), "tau {} vs {}", tau, ref_kendall(&x, &y));
    }

    #[test]
    fn invariants((x, y) in pairs(120)) {
        let rho = spearman(&x, &y, P).unwrap();
        let tau = kendall_tau_b(&x, &y, P).unwrap();
        // Bounds (or undefined).
        prop_assert!(rho.is_nan() || (-1.0..=1.0).contains(&rho));
        prop_assert!(tau.is_nan() || (-1.0..=1.0).contains(&tau));
        // Symmetry: bitwise, not just close.
        prop_assert_eq!(rho.to_bits(), spearman(&y, &x, P).unwrap().to_bits());
        prop_assert_eq!(tau.to_bits(), kendall_tau_b(&y, &x, P).unwrap().to_bits());
        // rho(x, x) = 1 unless x is constant.
        let self_rho = spearman(&x, &x, P).unwrap();
        prop_assert!(self_rho.is_nan() || self_rho == 1.0);
        prop_assert!(kendall_tau_b(&x, &x, P).unwrap().is_nan() || kendall_tau_b(&x, &x, P).unwrap() == 1.0);
        // Strictly increasing transform (atan keeps order; finite values stay distinct
        // enough at this range) leaves ranks unchanged; negation flips the sign.
        let mono: Vec<f64> = x.iter().map(|v| v.atan() * 3.0 + 1.0).collect();
        let mono_distinct_ok = {
            let mut a: Vec<(f64, f64)> = x.iter().copied().zip(mono.iter().copied()).collect();
            a.sort_by(|p, q| p.0.partial_cmp(&q.0).unwrap());
            a.windows(2).all(|w| (w[0].0 == w[1].0) == (w[0].1 == w[1].1))
        };
        if mono_distinct_ok {
            prop_assert!(close(spearman(&mono, &y, P).unwrap(), rho));
            prop_assert!(close(kendall_tau_b(&mono, &y, P).unwrap(), tau));
        }
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        prop_assert!(close(spearman(&neg, &y, P).unwrap(), -rho));
        prop_assert!(close(kendall_tau_b(&neg, &y, P).unwrap(), -tau));
    }

    #[test]
    fn grouped_equals_one_by_one(
        sizes in prop::collection::vec(0usize..40, 0..30),
        seed in any::<u64>(),
        nan_at in prop::option::of(0usize..400),
    ) {
        let total: usize = sizes.iter().sum();
        let mut s = seed | 1;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 40) % 11) as f64 / 10.0 };
        let mut x: Vec<f64> = (0..total).map(|_| next()).collect();
        let y: Vec<f64> = (0..total).map(|_| next()).collect();
        if let Some(i) = nan_at.filter(|&i| i < total) { x[i] = f64::NAN; }
        let mut offsets = vec![0i64];
        for n in &sizes { offsets.push(offsets.last().unwrap() + *n as i64); }
        for nan in [NanPolicy::Propagate, NanPolicy::Omit] {
            let rho = spearman_grouped(&x, &y, &offsets, nan).unwrap();
            let tau = kendall_tau_b_grouped(&x, &y, &offsets, nan).unwrap();
            for g in 0..sizes.len() {
                let (a, b) = (offsets[g] as usize, offsets[g + 1] as usize);
                prop_assert_eq!(rho[g].to_bits(), spearman(&x[a..b], &y[a..b], nan).unwrap().to_bits());
                prop_assert_eq!(tau[g].to_bits(), kendall_tau_b(&x[a..b], &y[a..b], nan).unwrap().to_bits());
            }
        }
    }
}

#[test]
fn large_inputs_match_reference_on_every_path() {
    let mut s = 99u64;
    let mut unif = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = 300_000;
    // A 0.1 grid (table path, parallel chunks), 100 levels (too many for the table),
    // and continuous values (sort path).
    let grid: Vec<f64> = (0..n).map(|_| (unif() * 10.0).round() / 10.0).collect();
    let wide: Vec<f64> = (0..n).map(|_| (unif() * 100.0).round()).collect();
    let cont: Vec<f64> = (0..n).map(|_| unif()).collect();
    let y: Vec<f64> = grid.iter().zip(&cont).map(|(g, c)| g + 0.3 * c).collect();
    let y_grid: Vec<f64> = y.iter().map(|v| (v * 5.0).round()).collect();
    for x in [&grid, &wide, &cont] {
        for yy in [&y, &y_grid] {
            let got = spearman(x, yy, P).unwrap();
            let want = ref_spearman(x, yy);
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }
    // Kendall on a smaller sample against the O(n^2) reference.
    let m = 3000;
    for x in [&grid, &wide, &cont] {
        let got = kendall_tau_b(&x[..m], &y_grid[..m], P).unwrap();
        let want = ref_kendall(&x[..m], &y_grid[..m]);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // Large Kendall on the (parallel) table path against a reference over distinct values.
    let tau = kendall_tau_b(&grid, &y_grid, P).unwrap();
    let want = ref_kendall_discrete(&grid, &y_grid);
    assert!((tau - want).abs() < 1e-12, "{tau} vs {want}");
}

/// tau-b of discrete data from its table of distinct-value pairs, O(cells^2).
fn ref_kendall_discrete(x: &[f64], y: &[f64]) -> f64 {
    let mut cells: std::collections::BTreeMap<(u64, u64), i64> = Default::default();
    let key = |v: f64| (v + 0.0).to_bits();
    for (&a, &b) in x.iter().zip(y) {
        *cells.entry((key(a), key(b))).or_default() += 1;
    }
    let cells: Vec<(f64, f64, i64)> = cells
        .into_iter()
        .map(|((a, b), c)| (f64::from_bits(a), f64::from_bits(b), c))
        .collect();
    let (mut s, mut tx, mut ty) = (0i64, 0i64, 0i64);
    let sign = |d: f64| (d > 0.0) as i64 - (d < 0.0) as i64;
    for (i, p) in cells.iter().enumerate() {
        tx += p.2 * (p.2 - 1) / 2;
        ty += p.2 * (p.2 - 1) / 2;
        for q in &cells[i + 1..] {
            let (a, b) = (sign(p.0 - q.0), sign(p.1 - q.1));
            s += a * b * p.2 * q.2;
            tx += (a == 0) as i64 * p.2 * q.2;
            ty += (b == 0) as i64 * p.2 * q.2;
        }
    }
    let n = x.len() as i64;
    let tot = n * (n - 1) / 2;
    s as f64 / (((tot - tx) as f64) * ((tot - ty) as f64)).sqrt()
}

#[test]
fn nan_policies_on_large_input() {
    let n = 200_000;
    let mut x: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| ((i * 3) % 5) as f64 + (i % 2) as f64)
        .collect();
    x[12345] = f64::NAN;
    assert!(spearman(&x, &y, P).unwrap().is_nan());
    let kept: Vec<usize> = (0..n).filter(|&i| !x[i].is_nan()).collect();
    let fx: Vec<f64> = kept.iter().map(|&i| x[i]).collect();
    let fy: Vec<f64> = kept.iter().map(|&i| y[i]).collect();
    let omit = spearman(&x, &y, NanPolicy::Omit).unwrap();
    assert_eq!(omit, spearman(&fx, &fy, P).unwrap());
    assert!((omit - ref_spearman(&fx, &fy)).abs() < 1e-12);
}

#[test]
fn continuous_input_above_the_i64_fast_path() {
    // Over 2^20 rows of distinct values: the chunked i64 -> i128 sums and the parallel sort.
    let n = (1 << 20) + 4321;
    let mut s = 7u64;
    let mut unif = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..n).map(|_| unif()).collect();
    let y: Vec<f64> = x.iter().map(|v| v * v + 0.2 * unif()).collect();
    let got = spearman(&x, &y, P).unwrap();
    // Naive f64 sums lose ~1e-12 at this size; the reference sums exactly in i128 over
    // twice-centered ranks (integers).
    let (rx, ry) = (avg_ranks(&x), avg_ranks(&y));
    let c = |r: f64| (2.0 * r) as i128 - (n as i128 + 1);
    let sxy: i128 = rx.iter().zip(&ry).map(|(&a, &b)| c(a) * c(b)).sum();
    let sxx: i128 = rx.iter().map(|&a| c(a) * c(a)).sum();
    let syy: i128 = ry.iter().map(|&b| c(b) * c(b)).sum();
    let want = sxy as f64 / (sxx as f64 * syy as f64).sqrt();
    assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    assert!((got - ref_spearman(&x, &y)).abs() < 1e-10);
}

#[test]
fn every_nan_payload_is_a_nan() {
    // Quiet, signalling, negative and all-ones NaNs (the last is the hash tables' empty
    // marker) on the small-group, block, table and large paths.
    let nans = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7FF0_0000_0000_0001),
        f64::from_bits(u64::MAX),
    ];
    for &bad in &nans {
        for n in [10usize, 300, 200_000] {
            let mut x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
            let y: Vec<f64> = (0..n).map(|i| (i % 5) as f64 + (i % 3) as f64).collect();
            x[n / 2] = bad;
            let keep: Vec<usize> = (0..n).filter(|&i| i != n / 2).collect();
            let fx: Vec<f64> = keep.iter().map(|&i| x[i]).collect();
            let fy: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
            let offsets = [0, n as i64 / 2, n as i64];
            for stat_fn in [spearman, kendall_tau_b] {
                assert!(stat_fn(&x, &y, P).unwrap().is_nan());
                assert!(stat_fn(&y, &x, P).unwrap().is_nan());
                let omit = stat_fn(&x, &y, NanPolicy::Omit).unwrap();
                assert_eq!(omit.to_bits(), stat_fn(&fx, &fy, P).unwrap().to_bits());
            }
            let g = spearman_grouped(&x, &y, &offsets, P).unwrap();
            assert!(!g[0].is_nan() && g[1].is_nan(), "{g:?}");
            let g = kendall_tau_b_grouped(&y, &x, &offsets, NanPolicy::Omit).unwrap();
            assert!(!g[1].is_nan());
        }
    }
}
