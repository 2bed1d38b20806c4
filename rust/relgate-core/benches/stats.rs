//! Criterion benches of the rank statistics on the domain's data shape: scores on a 0.1
//! grid (heavily tied). The cross-library comparison lives in `benches/bench_stats.py`.

use criterion::{criterion_group, criterion_main, Criterion};
use relgate_core::bootstrap::{bootstrap_ci_grouped, BootstrapConfig, CiMethod};
use relgate_core::rank::{correlation_grouped, spearman, NanPolicy, Statistic};
use std::hint::black_box;

fn grid(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut s = seed | 1;
    let mut unif = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..n).map(|_| (unif() * 10.0).round() / 10.0).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| ((0.5 * v + 0.5 * unif()) * 10.0).round() / 10.0)
        .collect();
    (x, y)
}

fn offsets(groups: usize, rows: usize) -> Vec<i64> {
    (0..=groups).map(|g| (g * rows) as i64).collect()
}

fn grouped(c: &mut Criterion) {
    for (groups, rows) in [(10_000, 50), (100, 10_000)] {
        let (x, y) = grid(groups * rows, 1);
        let off = offsets(groups, rows);
        for stat in [Statistic::Spearman, Statistic::KendallTauB] {
            c.bench_function(&format!("{stat:?} {groups}x{rows}"), |b| {
                b.iter(|| correlation_grouped(black_box(&x), &y, &off, NanPolicy::Propagate, stat))
            });
        }
    }
}

fn single(c: &mut Criterion) {
    let (x, y) = grid(10_000_000, 2);
    let mut g = c.benchmark_group("single");
    g.sample_size(10);
    g.bench_function("Spearman 1x10M grid", |b| {
        b.iter(|| spearman(black_box(&x), &y, NanPolicy::Propagate))
    });
    let cont: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| a + b * 1e-3 + a * b)
        .collect();
    let (cx, cy) = (&cont[..1_000_000], &y[..1_000_000]);
    g.bench_function("Spearman 1x1M continuous", |b| {
        b.iter(|| spearman(black_box(cx), cy, NanPolicy::Propagate))
    });
    g.finish();
}

fn bootstrap(c: &mut Criterion) {
    let (x, y) = grid(200, 3);
    for method in [CiMethod::Percentile, CiMethod::Bca] {
        let cfg = BootstrapConfig {
            statistic: Statistic::Spearman,
            n_resamples: 1000,
            confidence: 0.95,
            method,
            seed: 0,
        };
        c.bench_function(&format!("bootstrap 1000x200 {method:?}"), |b| {
            b.iter(|| bootstrap_ci_grouped(black_box(&x), &y, &[0, 200], None, &cfg))
        });
    }
}

criterion_group!(benches, grouped, single, bootstrap);
criterion_main!(benches);
