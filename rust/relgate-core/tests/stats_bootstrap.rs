//! Bootstrap determinism (any thread count, same bits), consistency with the point
//! statistics, and the paired design's fixed points.

use relgate_core::bootstrap::{
    bootstrap_ci_grouped, paired_bootstrap_diff, BootstrapConfig, CiMethod, Intervals,
    PairedIntervals,
};
use relgate_core::rank::{correlation_grouped, NanPolicy, Statistic};

fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<i64>) {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let y: Vec<f64> = (0..n).map(|i| (i % 3 == 0) as u8 as f64).collect();
    let x_old: Vec<f64> = y
        .iter()
        .map(|g| ((g * 0.5 + next()) * 10.0).round() / 10.0)
        .collect();
    let x_new: Vec<f64> = y
        .iter()
        .map(|g| ((g * 0.3 + next()) * 10.0).round() / 10.0)
        .collect();
    let clusters: Vec<i64> = (0..n as i64).map(|i| i / 3).collect();
    (x_new, x_old, y, clusters)
}

fn cfg(statistic: Statistic, method: CiMethod) -> BootstrapConfig {
    BootstrapConfig {
        statistic,
        n_resamples: 300,
        confidence: 0.9,
        method,
        seed: 42,
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same(a: &Intervals, b: &Intervals) -> bool {
    bits(&a.estimate) == bits(&b.estimate)
        && bits(&a.low) == bits(&b.low)
        && bits(&a.high) == bits(&b.high)
        && a.n == b.n
}

fn same_paired(a: &PairedIntervals, b: &PairedIntervals) -> bool {
    bits(&a.estimate) == bits(&b.estimate)
        && bits(&a.low) == bits(&b.low)
        && bits(&a.high) == bits(&b.high)
        && bits(&a.p_value) == bits(&b.p_value)
        && a.n == b.n
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (x_new, x_old, y, clusters) = data(900, 5);
    let offsets = [0i64, 90, 95, 96, 500, 900];
    for stat in [Statistic::Spearman, Statistic::KendallTauB] {
        for method in [CiMethod::Percentile, CiMethod::Bca] {
            for cl in [None, Some(&clusters[..])] {
                let c = cfg(stat, method);
                let run = || bootstrap_ci_grouped(&x_new, &y, &offsets, cl, &c).unwrap();
                let one = in_pool(1, run);
                let three = in_pool(3, run);
                assert!(same(&one, &three), "{stat:?} {method:?} {one:?} {three:?}");
            }
        }
        let c = cfg(stat, CiMethod::Percentile);
        let run = || paired_bootstrap_diff(&x_new, &x_old, &y, &offsets, &clusters, &c, 0.05);
        let (one, three) = (in_pool(1, || run().unwrap()), in_pool(3, || run().unwrap()));
        assert!(same_paired(&one, &three));
    }
}

#[test]
fn estimates_are_the_point_statistics_and_seeds_matter() {
    let (x, _, y, clusters) = data(600, 9);
    let offsets = [0i64, 200, 600];
    for stat in [Statistic::Spearman, Statistic::KendallTauB] {
        let point = correlation_grouped(&x, &y, &offsets, NanPolicy::Omit, stat).unwrap();
        let c = cfg(stat, CiMethod::Bca);
        let ci = bootstrap_ci_grouped(&x, &y, &offsets, Some(&clusters), &c).unwrap();
        for (g, p) in point.iter().enumerate() {
            assert_eq!(ci.estimate[g].to_bits(), p.to_bits());
            assert!(
                ci.low[g] < ci.estimate[g] && ci.estimate[g] < ci.high[g],
                "{ci:?}"
            );
        }
        let other = BootstrapConfig { seed: 43, ..c };
        let ci2 = bootstrap_ci_grouped(&x, &y, &offsets, Some(&clusters), &other).unwrap();
        assert_ne!(bits(&ci.low), bits(&ci2.low));
        assert_eq!(ci.n, vec![200, 400]);
    }
}

#[test]
fn paired_identical_releases_have_zero_difference() {
    let (x, _, y, clusters) = data(300, 3);
    let offsets = [0i64, 300];
    let c = cfg(Statistic::Spearman, CiMethod::Percentile);
    let r = paired_bootstrap_diff(&x, &x, &y, &offsets, &clusters, &c, 0.0).unwrap();
    assert_eq!((r.estimate[0], r.low[0], r.high[0]), (0.0, 0.0, 0.0));
    // Every resampled diff is 0 <= -0: H0 is never rejected.
    assert_eq!(r.p_value[0], 1.0);
    let r = paired_bootstrap_diff(&x, &x, &y, &offsets, &clusters, &c, 0.05).unwrap();
    assert_eq!(r.p_value[0], 1.0 / 301.0);
}

#[test]
fn paired_detects_a_worse_release() {
    let (x_new, x_old, y, clusters) = data(3000, 11);
    let c = cfg(Statistic::Spearman, CiMethod::Percentile);
    let r = paired_bootstrap_diff(&x_new, &x_old, &y, &[0, 3000], &clusters, &c, 0.0).unwrap();
    // x_new separates the grades less than x_old: the difference is clearly negative.
    assert!(r.high[0] < 0.0, "{r:?}");
    assert!(r.p_value[0] > 0.5);
}

#[test]
fn undefined_groups_are_nan_and_nan_rows_are_omitted() {
    let x = [1.0, 1.0, 1.0, f64::NAN, 2.0, 3.0, 4.0];
    let y = [1.0, 2.0, 3.0, 4.0, 1.0, 3.0, 2.0];
    let c = cfg(Statistic::Spearman, CiMethod::Percentile);
    let r = bootstrap_ci_grouped(&x, &y, &[0, 3, 7], None, &c).unwrap();
    assert!(r.estimate[0].is_nan() && r.low[0].is_nan() && r.high[0].is_nan());
    assert_eq!(r.n, vec![3, 3]);
    assert!((r.estimate[1] - 0.5).abs() < 1e-12);
}
