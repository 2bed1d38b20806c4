"""A bounded, loopback-only load generator for tests, benchmarks and the demo (not product code).

Open loop at a fixed rate: request ``i`` is sent at ``start + i / rate`` whatever happened to
earlier ones, so a slow server shows up as latency, not as a lower rate. It always stops by
itself: after ``max_requests`` or ``max_seconds``, whichever comes first, and at most
``max_in_flight`` requests are outstanding (a request that would exceed it is recorded as
skipped, not queued). Only loopback URLs are accepted.

Each request carries a session key (``x-relgate-session``, cycling over ``sessions`` keys) and,
when slices are given, a slice header; each result records latency, status and the
``x-relgate-release`` header. Run it in another process with
``python -m relgate.testing.loadgen --url URL --rate 500 --max-requests 5000 --max-seconds 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from relgate.errors import InvalidInputError
from relgate.routing import RELEASE_HEADER, SESSION_HEADER, SLICE_HEADER, TRACE_HEADER


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to send. ``url`` is the full chat-completions URL of a loopback server."""

    url: str
    rate_per_s: float
    max_requests: int
    max_seconds: float
    stream: bool = False
    sessions: int = 1000
    session_prefix: str = "session-"
    slices: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ("What happens if you crack your knuckles a lot?",)
    max_in_flight: int = 256
    timeout_s: float = 30.0
    model: str = "relgate"

    def __post_init__(self) -> None:
        host = urlsplit(self.url).hostname or ""
        if not _is_loopback(host):
            raise InvalidInputError(f"load generator targets loopback only, not {host!r}")
        if not (self.rate_per_s > 0 and self.max_requests > 0 and self.max_seconds > 0):
            raise InvalidInputError("rate_per_s, max_requests and max_seconds must be positive")
        if self.sessions < 1 or self.max_in_flight < 1 or not self.prompts:
            raise InvalidInputError("sessions, max_in_flight and prompts must be non-empty")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request's outcome. Times are seconds from the run's start (``time.perf_counter``).

    ``status`` is 0 when no HTTP response arrived (``error`` says why); ``skipped`` marks a
    request not sent because ``max_in_flight`` were outstanding.
    """

    index: int
    scheduled_s: float
    sent_s: float
    latency_s: float
    status: int
    release: str
    trace_id: str
    session: str
    slice: str
    prompt: str
    answer: str
    error: str = ""
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class LoadResult:
    """All records (in index order) and the run's wall time."""

    records: tuple[RequestRecord, ...]
    elapsed_s: float

    def ok(self) -> list[RequestRecord]:
        """Records with HTTP 200."""
        return [r for r in self.records if r.status == 200]

    def latencies(self) -> list[float]:
        """Latencies of the 200 responses, in seconds."""
        return [r.latency_s for r in self.records if r.status == 200]


def _answer_of(raw: bytes, stream: bool) -> str:
    if not stream:
        try:
            obj = json.loads(raw)
            return str(obj["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            return ""
    parts: list[str] = []
    for line in raw.split(b"\n"):
        line = line.strip()
        if line.startswith(b"data:") and line[5:].strip() not in (b"", b"[DONE]"):
            try:
                delta = json.loads(line[5:])["choices"][0]["delta"]
                parts.append(str(delta.get("content") or ""))
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
    return "".join(parts)


async def run_load(
    spec: LoadSpec,
    *,
    on_response: Callable[[RequestRecord], None] | None = None,
    stop: asyncio.Event | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> LoadResult:
    """Send the load described by ``spec``; returns once every sent request has finished.

    ``on_response`` is called on the loop for each finished (or skipped) request; setting
    ``stop`` ends the sending early (outstanding requests still finish).
    """
    records: dict[int, RequestRecord] = {}
    in_flight: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    connector = aiohttp.TCPConnector(limit=spec.max_in_flight)
    t0 = time.perf_counter()

    async def one(session: aiohttp.ClientSession, i: int, sched: float) -> None:
        sess = f"{spec.session_prefix}{i % spec.sessions}"
        slice_name = spec.slices[i % len(spec.slices)] if spec.slices else ""
        prompt = spec.prompts[i % len(spec.prompts)]
        headers = {SESSION_HEADER: sess}
        if slice_name:
            headers[SLICE_HEADER] = slice_name
        body = {
            "model": spec.model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": spec.stream,
            **(extra_body or {}),
        }
        sent = time.perf_counter()
        status, release, trace_id, answer, error = 0, "", "", "", ""
        try:
            async with session.post(spec.url, json=body, headers=headers) as r:
                raw = await r.read()
                status = r.status
                release = r.headers.get(RELEASE_HEADER, "")
                trace_id = r.headers.get(TRACE_HEADER, "")
                if status == 200:
                    answer = _answer_of(raw, spec.stream)
        except (aiohttp.ClientError, TimeoutError) as e:
            error = e.__class__.__name__
        done = time.perf_counter()
        rec = RequestRecord(
            i,
            sched,
            sent - t0,
            done - sent,
            status,
            release,
            trace_id,
            sess,
            slice_name,
            prompt,
            answer,
            error,
        )
        records[i] = rec
        if on_response is not None:
            on_response(rec)

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        interval = 1.0 / spec.rate_per_s
        for i in range(spec.max_requests):
            sched = i * interval
            if sched > spec.max_seconds or (stop is not None and stop.is_set()):
                break
            # Pacing toward an absolute schedule (not waiting for state): the rate holds on average.
            delay = t0 + sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - t0 > spec.max_seconds:
                break
            if len(in_flight) >= spec.max_in_flight:
                rec = RequestRecord(
                    i,
                    sched,
                    time.perf_counter() - t0,
                    0.0,
                    0,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "max_in_flight",
                    True,
                )
                records[i] = rec
                if on_response is not None:
                    on_response(rec)
                continue
            task = asyncio.create_task(one(session, i, sched))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)
    return LoadResult(tuple(records[k] for k in sorted(records)), time.perf_counter() - t0)


def summarize(latencies: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max (nearest rank, in milliseconds) of latencies in seconds."""
    lat = sorted(latencies)
    if not lat:
        return {"n": 0}

    def q(p: float) -> float:
        return lat[max(0, min(len(lat) - 1, int(-(-p * len(lat) // 1)) - 1))] * 1e3

    return {"n": float(len(lat)), "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": lat[-1] * 1e3}


def main(argv: list[str] | None = None) -> None:
    """CLI: run one bounded load and write records as JSON lines (``--out``) plus a summary."""
    p = argparse.ArgumentParser(description="relgate bounded loopback load generator (testing)")
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--max-requests", type=int, required=True)
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--slice", action="append", default=[])
    p.add_argument("--max-in-flight", type=int, default=256)
    p.add_argument("--out", help="write one JSON record per line here")
    a = p.parse_args(argv)
    spec = LoadSpec(
        url=a.url,
        rate_per_s=a.rate,
        max_requests=a.max_requests,
        max_seconds=a.max_seconds,
        stream=a.stream,
        sessions=a.sessions,
        slices=tuple(a.slice),
        max_in_flight=a.max_in_flight,
    )
    result = asyncio.run(run_load(spec))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            for r in result.records:
                f.write(json.dumps(asdict(r)) + "\n")
    statuses: dict[int, int] = {}
    for r in result.records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    summary = {"elapsed_s": result.elapsed_s, "statuses": statuses, **summarize(result.latencies())}
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
