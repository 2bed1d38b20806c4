//! Unit tests of the bootstrap (kept beside it, out of its file).

use super::*;

#[test]
fn tail_pvalues_count_ties_on_both_sides() {
    let s = [0.1, 0.2, 0.2, 0.5];
    // H0: stat <= 0.2 counts 3 resamples at or below; H0: stat >= 0.2 counts 3 at or above.
    assert_eq!(tail_pvalues(&s, 0.2), (4.0 / 5.0, 4.0 / 5.0));
    assert_eq!(tail_pvalues(&s, 0.0), (1.0 / 5.0, 5.0 / 5.0));
    assert_eq!(tail_pvalues(&s, 1.0), (5.0 / 5.0, 1.0 / 5.0));
}

#[test]
fn thresholds_give_below_pvalues_per_group() {
    let x: Vec<f64> = (0..40).map(|i| i as f64).collect();
    let y = x.clone();
    let cfg = BootstrapConfig {
        statistic: Statistic::Spearman,
        n_resamples: 199,
        confidence: 0.95,
        method: CiMethod::Percentile,
        seed: 7,
    };
    let offsets = [0_i64, 20, 40];
    // rho is 1 in both groups: never shown below 0.5 (p = 1), always below 1.5 (1/200).
    let r = bootstrap_ci_grouped_below(&x, &y, &offsets, None, &cfg, Some(&[0.5, 1.5])).unwrap();
    assert_eq!(r.p_below[0], 1.0);
    assert_eq!(r.p_below[1], 1.0 / 200.0);
    let r =
        bootstrap_ci_grouped_below(&x, &y, &offsets, None, &cfg, Some(&[1.0, f64::NAN])).unwrap();
    assert_eq!(r.p_below[0], 1.0); // ties at the threshold never count as evidence
    assert!(r.p_below[1].is_nan());
    assert!(bootstrap_ci_grouped_below(&x, &y, &offsets, None, &cfg, Some(&[0.5])).is_err());
    assert!(bootstrap_ci_grouped(&x, &y, &offsets, None, &cfg)
        .unwrap()
        .p_below
        .is_empty());
}

fn cfg(method: CiMethod) -> BootstrapConfig {
    BootstrapConfig {
        statistic: Statistic::Spearman,
        n_resamples: 500,
        confidence: 0.9,
        method,
        seed: 7,
    }
}

#[test]
fn draws_are_in_range_and_uniform() {
    let mut rng = stream(1, 2, 3);
    for m in [1u32, 2, 3, 7, 200, (1 << 31) + 1, u32::MAX] {
        let uni = Uniform::new(m);
        for _ in 0..1000 {
            let bits = rng.next_u32();
            assert!(uni.pick(bits, &mut rng) < m as usize);
        }
    }
    // m = 2^31 + 1 rejects almost half of all 32-bit inputs, so this exercises the
    // redraw path heavily; halves of the range must still get half of the draws.
    let uni = Uniform::new((1 << 31) + 1);
    let low = (0..20_000)
        .filter(|_| {
            let bits = rng.next_u32();
            uni.pick(bits, &mut rng) < (1 << 30)
        })
        .count();
    assert!((9_500..10_500).contains(&low), "{low}");
}

#[test]
fn interval_brackets_estimate_and_is_deterministic() {
    let x: Vec<f64> = (0..200).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v + ((i * 13) % 7) as f64 / 10.0)
        .collect();
    for method in [CiMethod::Percentile, CiMethod::Bca] {
        let a = bootstrap_ci_grouped(&x, &y, &[0, 200], None, &cfg(method)).unwrap();
        let b = bootstrap_ci_grouped(&x, &y, &[0, 200], None, &cfg(method)).unwrap();
        assert_eq!(a, b);
        assert!(
            a.low[0] < a.estimate[0] && a.estimate[0] < a.high[0],
            "{a:?}"
        );
    }
}

#[test]
fn group_jackknife_estimates_the_same_acceleration() {
    // Skewed continuous data, small enough for the exact jackknife.
    let mut st = 3u64;
    let mut unif = || {
        st = st
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (st >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = 2000;
    let x: Vec<f64> = (0..n).map(|_| unif().powi(4)).collect();
    let y: Vec<f64> = x.iter().map(|v| v + 0.05 * unif()).collect();
    let prep = prepare(&[&x], &y, None, Statistic::Spearman);
    for stat in [Statistic::Spearman, Statistic::KendallTauB] {
        let exact = acceleration(&jackknife(&prep, stat));
        let grouped = acceleration(&group_jackknife(&prep, stat, 200));
        assert!(exact.abs() > 1e-3, "{exact}");
        assert!(
            (grouped - exact).abs() < 0.5 * exact.abs(),
            "{grouped} vs {exact}"
        );
    }
}

#[test]
fn bad_config_is_rejected() {
    let mut c = cfg(CiMethod::Percentile);
    c.confidence = 1.0;
    assert!(bootstrap_ci_grouped(&[1.0], &[1.0], &[0, 1], None, &c).is_err());
    c.confidence = 0.9;
    c.n_resamples = 0;
    assert!(bootstrap_ci_grouped(&[1.0], &[1.0], &[0, 1], None, &c).is_err());
}
