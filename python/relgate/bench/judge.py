"""Judge throughput measurement (``relgate bench judge`` and ``benches/bench_judge.py``).

Rows are (answer, reference) pairs from the shipped demo suite: the held-out best answer of each
item against each of its references, cycled to the requested count. The judge is warmed up
(model loaded) on a few pairs that are not measured; then the rows are scored in batches and
each batch is timed. Reported: rows/s and tokens/s over the whole run, per-batch latency p50 /
p95 / p99, peak resident memory of the process and, on CUDA, peak GPU memory.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from relgate.judge.base import Judge

__all__ = ["JudgeBench", "bench_rows", "measure_judge"]


@dataclass(frozen=True)
class JudgeBench:
    """One measured run."""

    backend: str
    rows: int
    batch_size: int
    seconds: float
    rows_per_s: float
    tokens: int | None
    tokens_per_s: float | None
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    peak_rss_mb: float
    peak_gpu_mb: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        tok = "n/a" if self.tokens_per_s is None else f"{self.tokens_per_s:,.0f}"
        gpu = "" if self.peak_gpu_mb is None else f", peak GPU {self.peak_gpu_mb:,.0f} MB"
        return [
            f"backend {self.backend}: {self.rows} rows in batches of {self.batch_size}, "
            f"{self.seconds:.2f} s",
            f"  rows/s {self.rows_per_s:,.1f}   tokens/s {tok}",
            f"  batch latency p50 {self.latency_p50_ms:.1f} ms   p95 {self.latency_p95_ms:.1f} ms"
            f"   p99 {self.latency_p99_ms:.1f} ms",
            f"  peak RSS {self.peak_rss_mb:,.0f} MB{gpu}",
        ]


def bench_rows(n: int) -> tuple[list[str], list[str]]:
    """``n`` (answer, reference) pairs from the demo suite, cycled."""
    from relgate.answers import load_answers
    from relgate.data import demo_calibration_answers_path, demo_suite_path
    from relgate.suite import load_suite

    suite = load_suite(demo_suite_path())
    best = load_answers(demo_calibration_answers_path())
    items = suite.frame["item_id"].to_list()
    refs = suite.frame["reference"].to_list()
    answers = [best[i] for i in items]
    reps = -(-n // len(refs))
    return (answers * reps)[:n], (refs * reps)[:n]


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure_judge(
    judge: Judge, answers: list[str], references: list[str], *, batch_size: int, backend: str
) -> JudgeBench:
    """Time ``judge`` on the pairs, one ``score`` call per batch."""
    judge.score(answers[:2], references[:2])  # warm-up: load the model, build caches
    torch: Any = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tokens_before = getattr(judge, "tokens_processed", None)
    latencies = []
    start = time.perf_counter()
    for lo in range(0, len(answers), batch_size):
        t0 = time.perf_counter()
        judge.score(answers[lo : lo + batch_size], references[lo : lo + batch_size])
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    tokens_after = getattr(judge, "tokens_processed", None)
    tokens = None
    if tokens_before is not None and tokens_after is not None:
        tokens = int(tokens_after) - int(tokens_before)
    lat = np.asarray(latencies) * 1000.0
    return JudgeBench(
        backend=backend,
        rows=len(answers),
        batch_size=batch_size,
        seconds=seconds,
        rows_per_s=len(answers) / seconds,
        tokens=tokens,
        tokens_per_s=None if tokens is None else tokens / seconds,
        latency_p50_ms=float(np.percentile(lat, 50)),
        latency_p95_ms=float(np.percentile(lat, 95)),
        latency_p99_ms=float(np.percentile(lat, 99)),
        peak_rss_mb=_peak_rss_mb(),
        peak_gpu_mb=float(torch.cuda.max_memory_allocated()) / 2**20 if cuda else None,
    )
