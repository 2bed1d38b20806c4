"""Judge throughput measurement (``relgate bench judge`` and ``benches/bench_judge.py``).

Rows are (answer, reference) pairs from the shipped demo suite: the held-out best answer of each
item against each of its references, cycled to the requested count. The judge is warmed up
(model loaded) on a few pairs that are not measured; then the rows are scored in batches and
each batch is timed. Reported: rows/s and tokens/s over the whole run, per-batch latency p50 /
p95 / p99, peak resident memory of the process and, on CUDA, peak GPU memory.

For a judge behind an OpenAI-compatible server (``measure_prefill``), the server's own raw
prefill throughput is measured in the same run as the anchor: the judge's exact chat messages,
``max_tokens`` 1, no logprobs, with a random nonce in front of the system message so the server
can reuse no prefix (the judge itself sends a shared system prompt first, which a server with a
prefix cache reuses). The ratio judge pairs/s over anchor pairs/s says how close the judge runs
to what the server can prefill; above 1 means prefix reuse buys more than logprobs cost.
"""

from __future__ import annotations

import asyncio
import resource
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from relgate.judge.base import Judge

__all__ = ["JudgeBench", "PrefillAnchor", "bench_rows", "measure_judge", "measure_prefill"]


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


@dataclass(frozen=True)
class PrefillAnchor:
    """The server's raw prefill on the judge's prompts, measured beside the judge."""

    pairs: int
    concurrency: int
    seconds: float
    pairs_per_s: float
    prompt_tokens: int
    prompt_tokens_per_s: float
    judge_pairs_per_s: float
    ratio: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        return [
            f"server raw prefill (same prompts, nonce-prefixed, max_tokens 1, concurrency "
            f"{self.concurrency}): {self.pairs_per_s:,.2f} prompts/s, "
            f"{self.prompt_tokens_per_s:,.0f} prompt tokens/s",
            f"  judge {self.judge_pairs_per_s:,.2f} pairs/s = {self.ratio:.2f} x the raw prefill",
        ]


def measure_prefill(
    base_url: str,
    model: str,
    answers: list[str],
    references: list[str],
    *,
    judge_pairs_per_s: float,
    concurrency: int = 1,
    timeout_s: float = 120.0,
    api_key: str | None = None,
) -> PrefillAnchor:
    """Time the server prefilling the judge's prompts with no reusable prefix (the anchor).

    A server that fails, times out or answers without ``usage.prompt_tokens`` raises a named
    error (``JudgeError`` / ``JudgeUnavailableError``): an anchor that was not measured is
    never reported.
    """
    from relgate.engines.http import auth_headers, post_json
    from relgate.errors import JudgeError
    from relgate.judge.base import import_backend
    from relgate.judge.llm import judge_messages

    aiohttp = import_backend("aiohttp", "prefill anchor")
    url = f"{base_url.rstrip('/')}/chat/completions"

    async def one(session: Any, gate: asyncio.Semaphore, answer: str, ref: str) -> int:
        messages = judge_messages(answer, ref)
        messages[0] = {**messages[0], "content": f"{secrets.token_hex(8)} {messages[0]['content']}"}
        body = {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0.0}
        data = await post_json(
            session,
            url,
            body,
            headers=auth_headers(api_key),
            retries=1,
            timeout_s=timeout_s,
            gate=gate,
            client_error=JudgeError,
        )
        try:
            return int(data["usage"]["prompt_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeError(f"{url}: response without usage.prompt_tokens ({exc!r})") from exc

    async def run() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession() as session:
            await one(session, gate, answers[0], references[0])  # warm-up, not measured
            return list(
                await asyncio.gather(
                    *(one(session, gate, a, r) for a, r in zip(answers, references, strict=True))
                )
            )

    start = time.perf_counter()
    tokens = asyncio.run(run())
    seconds = time.perf_counter() - start
    pairs_per_s = len(answers) / seconds
    return PrefillAnchor(
        pairs=len(answers),
        concurrency=concurrency,
        seconds=seconds,
        pairs_per_s=pairs_per_s,
        prompt_tokens=sum(tokens),
        prompt_tokens_per_s=sum(tokens) / seconds,
        judge_pairs_per_s=judge_pairs_per_s,
        ratio=judge_pairs_per_s / pairs_per_s,
    )
