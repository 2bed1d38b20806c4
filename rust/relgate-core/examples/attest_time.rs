//! Time attestations of a checkpoint on disk against the anchor: multi-threaded BLAKE3
//! (`update_rayon`) of the same bytes, warm page cache, median of N runs, in one process.
//! Besides wall time it reports the process's CPU time (user + system, from
//! /proc/self/stat, Linux only): on a shared machine wall time follows the neighbours'
//! load, CPU time mostly follows the work done.
//!
//! `cargo run --release -p relgate-core --example attest_time -- PATH [RUNS] [CACHE_DIR]`
//!
//! With CACHE_DIR it also times a re-attestation through the leaf cache (the first run
//! fills it; files modified less than 2 s before are not cached, so give them time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relgate_core::attest::{self, Checkpoint, Options};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time of this process so far (utime + stime), in clock ticks of 10 ms.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis(10 * f.iter().sum::<u64>())
}

/// Median wall time and median CPU time of `runs` calls.
fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f(); // warm-up: page cache, thread pool
    let (mut wall, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu());
        f();
        wall.push(t.elapsed());
        cpus.push(cpu().saturating_sub(c));
    }
    (median(wall), median(cpus))
}

fn files(path: &Path) -> Vec<PathBuf> {
    let cp = Checkpoint::open(path).expect("a valid checkpoint");
    cp.files.iter().map(|f| f.path.clone()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(args.get(1).expect("PATH"));
    let runs: usize = args.get(2).map_or(5, |r| r.parse().expect("RUNS"));
    let paths = files(&path);
    let maps: Vec<memmap2::Mmap> = paths
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).unwrap();
            // SAFETY: read-only private map of a file nobody writes during the benchmark.
            unsafe { memmap2::Mmap::map(&f) }.unwrap()
        })
        .collect();
    let total: usize = maps.iter().map(|m| m.len()).sum();
    let anchor = time(runs, || {
        for m in &maps {
            std::hint::black_box(blake3::Hasher::new().update_rayon(m).finalize());
        }
    });
    let gib = total as f64 / (1u64 << 30) as f64;
    println!(
        "{} files, {:.2} GiB, {} threads",
        paths.len(),
        gib,
        rayon::current_num_threads()
    );
    let report = |what: &str, (d, c): (Duration, Duration)| {
        println!(
            "{what:<36} wall {:>7.1} ms {:>5.2} GiB/s {:.2}x anchor | cpu {:>7.0} ms {:.2}x anchor",
            d.as_secs_f64() * 1e3,
            gib / d.as_secs_f64(),
            d.as_secs_f64() / anchor.0.as_secs_f64(),
            c.as_secs_f64() * 1e3,
            c.as_secs_f64() / anchor.1.as_secs_f64().max(1e-3)
        )
    };
    report("anchor: blake3 update_rayon, per file", anchor);
    let tree = Options::default();
    report(
        "attest (tree only, the default)",
        time(runs, || {
            attest::attest(&path, &tree).unwrap();
        }),
    );
    let both = Options {
        file_digests: true,
        ..Options::default()
    };
    report(
        "attest + file digests",
        time(runs, || {
            attest::attest(&path, &both).unwrap();
        }),
    );
    if let Some(dir) = args.get(3) {
        let cached = Options {
            cache_dir: Some(PathBuf::from(dir)),
            ..Options::default()
        };
        let first = attest::attest(&path, &cached).unwrap();
        let again = attest::attest(&path, &cached).unwrap();
        assert_eq!(first.root, again.root);
        println!(
            "cache: {} of {} files from the cache, {} tensor bytes hashed",
            again.files_from_cache,
            again.files.len(),
            again.tensor_bytes_hashed
        );
        report(
            "re-attest through the leaf cache",
            time(runs, || {
                attest::attest(&path, &cached).unwrap();
            }),
        );
    }
}
