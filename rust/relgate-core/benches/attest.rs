//! Criterion benchmarks of the attestation core: a whole-checkpoint attestation (with and
//! without file digests) against plain multi-threaded BLAKE3 of the same file, header
//! parsing, and Merkle roots. `cargo bench -p relgate-core --bench attest`.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relgate_core::attest::{self, Options};
use relgate_core::merkle::{self, HashAlgo};
use relgate_core::safetensors;

/// A 64 MiB LLM-like file: big matrices and small norms, BF16, pseudo-random bytes.
fn write_checkpoint(path: &Path) -> u64 {
    let sizes: Vec<(String, usize)> = (0..4)
        .flat_map(|l| {
            [
                (4 << 20, "q"),
                (4 << 20, "o"),
                (8 << 20, "mlp"),
                (8 << 10, "norm"),
            ]
            .into_iter()
            .map(move |(n, k)| (format!("layers.{l}.{k}"), n))
        })
        .collect();
    let mut header = serde_json::Map::new();
    let mut pos = 0usize;
    for (name, n) in &sizes {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "BF16", "shape": [n / 2], "data_offsets": [pos, pos + n]}),
        );
        pos += n;
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&(text.len() as u64).to_le_bytes()).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; pos];
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    f.write_all(&buf).unwrap();
    f.flush().unwrap();
    (8 + text.len() + pos) as u64
}

fn bench_attest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let bytes = write_checkpoint(&path);
    let data = std::fs::read(&path).unwrap();
    let mut g = c.benchmark_group("attest-64MiB");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.bench_function("blake3 update_rayon (anchor)", |b| {
        b.iter(|| {
            *blake3::Hasher::new()
                .update_rayon(black_box(&data))
                .finalize()
                .as_bytes()
        })
    });
    g.bench_function("attest tree only (default)", |b| {
        b.iter(|| attest::attest(&path, &Options::default()).unwrap().root)
    });
    let with_files = Options {
        file_digests: true,
        ..Options::default()
    };
    g.bench_function("attest tree + file digest (one pass)", |b| {
        b.iter(|| attest::attest(&path, &with_files).unwrap().root)
    });
    g.finish();
    c.bench_function("parse header (16 tensors)", |b| {
        b.iter(|| {
            safetensors::parse(&path, black_box(&data))
                .unwrap()
                .tensors
                .len()
        })
    });
}

fn bench_merkle(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle");
    for n in [1_000usize, 100_000] {
        let leaves: Vec<merkle::Hash> = (0..n)
            .map(|i| HashAlgo::Sha256.leaf_hash(&i.to_le_bytes()))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for algo in [HashAlgo::Sha256, HashAlgo::Blake3] {
            g.bench_with_input(
                BenchmarkId::new(format!("root {}", algo.name()), n),
                &leaves,
                |b, l| b.iter(|| merkle::root(algo, black_box(l))),
            );
        }
        let records: Vec<Vec<u8>> = (0..n).map(|i| vec![(i % 251) as u8; 300]).collect();
        g.bench_with_input(
            BenchmarkId::new("leaf_hashes sha256 (300 B)", n),
            &records,
            |b, r| b.iter(|| merkle::leaf_hashes(HashAlgo::Sha256, black_box(r))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_attest, bench_merkle);
criterion_main!(benches);
