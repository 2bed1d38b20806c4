"""The load generator stops by itself and stays on loopback; the TEST BACKENDS' knobs work."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from relgate.errors import InvalidInputError
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.loadgen import LoadSpec, RequestRecord, run_load, summarize


def spec(backend: TestBackend, **kw: object) -> LoadSpec:
    args: dict[str, object] = {
        "url": backend.base_url + "/chat/completions",
        "rate_per_s": 500.0,
        "max_requests": 50,
        "max_seconds": 10.0,
        **kw,
    }
    return LoadSpec(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:80/v1/chat/completions", "http://example.com/v1/chat/completions"]
)
def test_only_loopback_targets(url: str) -> None:
    with pytest.raises(InvalidInputError):
        LoadSpec(url=url, rate_per_s=1, max_requests=1, max_seconds=1)
    for ok in ("http://127.0.0.1:1/x", "http://localhost:1/x", "http://[::1]:1/x"):
        LoadSpec(url=ok, rate_per_s=1, max_requests=1, max_seconds=1)


def test_bad_bounds_rejected() -> None:
    with pytest.raises(InvalidInputError):
        LoadSpec(url="http://127.0.0.1:1/x", rate_per_s=0, max_requests=1, max_seconds=1)


def test_stops_at_max_requests_and_at_max_seconds() -> None:
    async def go() -> None:
        be = TestBackend("A")
        await be.start()
        by_count = await run_load(spec(be, max_requests=30))
        assert len(by_count.records) == 30 and be.arrived == 30
        # 50 req/s for 0.3 s: at most 16 scheduled (t = 0, 0.02, .., 0.30), far below
        # max_requests; a busy machine may send fewer, never more, and none scheduled later.
        by_time = await run_load(spec(be, rate_per_s=50.0, max_requests=10_000, max_seconds=0.3))
        assert 1 <= len(by_time.records) <= 16
        assert max(r.scheduled_s for r in by_time.records) <= 0.3
        assert all(r.status == 200 for r in by_time.records)
        await be.stop()

    asyncio.run(go())


def test_max_in_flight_skips_instead_of_queueing() -> None:
    async def go() -> None:
        be = TestBackend("A")
        await be.start()
        be.pause()
        skipped: list[RequestRecord] = []
        all_skipped = asyncio.Event()

        def on_response(rec: RequestRecord) -> None:
            skipped.extend([rec] if rec.skipped else [])
            if len(skipped) == 7:
                all_skipped.set()

        task = asyncio.create_task(
            run_load(spec(be, max_in_flight=3, max_requests=10), on_response=on_response)
        )
        # Three requests are held in the backend, so the other seven cannot be sent.
        await be.wait_arrivals(3)
        await asyncio.wait_for(all_skipped.wait(), timeout=10)
        be.resume()
        result = await task
        sent = [r for r in result.records if not r.skipped]
        assert len(result.records) == 10 and len(sent) == 3
        assert [r.index for r in skipped] == list(range(3, 10))
        assert all(r.status == 200 for r in sent)
        await be.stop()

    asyncio.run(go())


def test_backend_knobs_latency_errors_and_answers() -> None:
    async def go() -> None:
        be = TestBackend("A", BackendKnobs(error_probability=0.3), seed=7)
        await be.start()
        result = await run_load(spec(be, max_requests=200, rate_per_s=1000.0))
        share = sum(r.status == 500 for r in result.records) / 200
        assert 0.2 < share < 0.4
        be.set_knobs(error_probability=0.0, base_latency_s=0.02, latency_factor=2.0)
        slow = await run_load(spec(be, max_requests=5))
        assert min(slow.latencies()) >= 0.04
        be.set_knobs(base_latency_s=0.0, answers={"crack your knuckles": "Nothing in particular."})
        ans = await run_load(spec(be, max_requests=2))
        assert {r.answer for r in ans.records} == {"Nothing in particular."}
        await be.stop()

    asyncio.run(go())


def test_summary_and_cli_process(tmp_path: object) -> None:
    s = summarize([0.001 * i for i in range(1, 101)])
    assert (s["n"], s["p50_ms"], s["p99_ms"]) == (100, pytest.approx(50), pytest.approx(99))
    with subprocess.Popen(
        [sys.executable, "-m", "relgate.testing.backends", "--name", "P", "--stop-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as be:
        assert be.stdin is not None and be.stdout is not None
        port = json.loads(be.stdout.readline())["port"]
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "relgate.testing.loadgen",
                    "--url",
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    "--rate",
                    "200",
                    "--max-requests",
                    "20",
                    "--max-seconds",
                    "5",
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
        finally:
            # Closing stdin is the backend's signal to stop (no orphan if the test fails).
            be.stdin.close()
        assert be.wait(timeout=30) == 0
    summary = json.loads(out.stdout)
    assert summary["statuses"] == {"200": 20} and summary["n"] == 20
