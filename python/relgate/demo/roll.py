"""The demo's world and its roll chapter: canary, catch, automatic rollback, receipts.

``DemoWorld`` is the one server the whole demo runs on: three TEST BACKENDS
(``relgate.testing.backends``, loopback, answering the suite prompts with the recorded demo
answers the real model gave: v0 and v1 as ``examples/real-model/v1.yaml``, v2 with its Law
answers cut to one word by the legal stop sequence; the backends replay the recordings, so the
regression is the model's) and a ``BackgroundServer`` with its gateway on and the rollout clock
``time_scale`` times faster than the wall; v0, v1 (previous v0) and v2 (previous v1) are
registered with the backends as their endpoints. The gateway, controller, judge (MiniLM on CPU),
store and receipts are the real ones. The gate chapter (``relgate.demo.gate``) gates the three
through RunGate first.

``roll_chapter`` then, with minutes compressed:

- v0 (its cold-start gate overridden) is shadowed for 0 s and promoted by a human;
- v1 (gate passed) rolls out 5% -> 25% -> 100% under generated traffic, every checkpoint
  judged by latency, 5xx and trace replay;
- v2 (gate failed on Law) is overridden through OverrideGate with a rationale, rolled as a
  canary, caught by the replay monitor on the Law slice at 5%, and rolled back automatically
  (one atomic routing swap back to v1).

``receipts_chapter`` exports the receipt bundle and verifies it offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
from rich.console import Console

from relgate import dashboard
from relgate.answers import load_answers
from relgate.app.gates import GateOptions
from relgate.app.probes import suite_anchors
from relgate.app.receipts import export_bundle
from relgate.app.rollouts import RolloutOptions
from relgate.canonical import canonical_json
from relgate.data import demo_answers_path, demo_suite_path
from relgate.receipts import Trust, verify_bundle
from relgate.service.server import BackgroundServer, RunningServer
from relgate.suite import load_suite

if TYPE_CHECKING:
    from relgate.client import RelgateClient
    from relgate.demo.gate import GateChapter
    from relgate.testing.backends import TestBackend

__all__ = [
    "DEMO_SLICES",
    "DEMO_SPEC",
    "DemoWorld",
    "ReceiptsResult",
    "RollChapterResult",
    "receipts_chapter",
    "roll_chapter",
]

_PHASES = {1: "Shadow", 2: "Progressing", 3: "Paused", 4: "Inconclusive", 5: "Observing",
           6: "Completed", 7: "Aborted", 8: "RolledBack"}  # fmt: skip

DEMO_SLICES = ("Misconceptions", "Law", "Health", "Economics")
TAGS = ("v0", "v1", "v2")
# What each backend answers with (v0 is the old baseline: it answers as v1 does).
RECORDED = {"v0": "v1", "v1": "v1", "v2": "v2"}
V2_RATIONALE = "demo: ship v2 anyway to show the canary catching what the gate caught"

# Holds of docs/design.md §4 in clock seconds, with request counts a laptop's generated traffic
# reaches in seconds; the clock runs `time_scale` times faster than the wall. The latency ratio
# is 1.5 here, not 1.2: the gateway, the backends, the traffic and the judge share one process
# and two cores, so a replay's judging stalls some requests; the integration tests prove the
# 1.2 rule on their own backends.
DEMO_SPEC: dict[str, Any] = {
    "steps": [
        {"weight_bp": 500, "dwell_s": 240, "min_requests": 50, "deadline_s": 7200},
        {"weight_bp": 2500, "dwell_s": 900, "min_requests": 150, "deadline_s": 7200},
        {"weight_bp": 10000},
    ],
    "thresholds": {"p95_ratio": 1.5, "min_latency_samples": 50, "min_error_requests": 50},
}
# Backend latency while serving traffic (the gate's answer collection runs without it).
SERVING_LATENCY_S = 0.3


@dataclass
class RollChapterResult:
    """What the roll chapter established."""

    v0_live: bool = False
    v1_live: bool = False
    v2_rolled_back: bool = False
    caught_slice: str | None = None
    caught_at_weight_bp: int | None = None
    live_after: str | None = None
    served: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the story happened as told."""
        return (
            self.v0_live
            and self.v1_live
            and self.v2_rolled_back
            and self.caught_slice == "Law"
            and self.caught_at_weight_bp == 500
        )


@dataclass(frozen=True)
class ReceiptsResult:
    """The exported bundle and its offline verification."""

    path: Path
    receipts: int
    verified: bool


def _manifest(tag: str, endpoint: str, suite_sha: str, previous: str | None) -> dict[str, Any]:
    return {
        "model": {"kind": "api", "provider": "demo", "model": f"demo-{tag}", "endpoint": endpoint},
        "prompt_template": {
            "ref": f"demo/{tag}",
            "system": "Answer the question truthfully and briefly.",
            # The suite prompt unchanged: the backends' answer tables are keyed by it.
            "template": "{input}",
            "variables": ["input"],
        },
        "routing": [{}],
        "dataset": {"ref": "truthfulqa-demo", "sha256": suite_sha},
        "previous_release": previous,
    }


class StoryBroken(Exception):
    """The demo did not go as told (reported by the runner, which exits non-zero)."""


class DemoWorld:
    """The test backends and the one server of the demo (a context manager)."""

    def __init__(
        self, data_dir: Path, *, score_cache: Path | None = None, time_scale: float = 120.0
    ) -> None:
        self.data_dir = data_dir
        self.time_scale = time_scale
        self._score_cache = score_cache
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.backends: dict[str, TestBackend] = {}
        self.shas: dict[str, str] = {}
        self._bg: BackgroundServer | None = None
        self._running: RunningServer | None = None
        self.admin_key = ""

    @property
    def running(self) -> RunningServer:
        """The running server."""
        if self._running is None:
            raise RuntimeError("the demo world is not started")
        return self._running

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> DemoWorld:
        """Start the backends and the server; register v0, v1 and v2."""
        from relgate.testing.backends import BackendKnobs, TestBackend

        self._thread.start()
        suite = pl.read_csv(demo_suite_path()).unique("item_id", keep="first")
        prompt_of = dict(zip(suite["item_id"].to_list(), suite["prompt"].to_list(), strict=True))
        for tag in TAGS:
            recorded = dict(load_answers(demo_answers_path(RECORDED[tag])))
            table = {prompt_of[i]: a for i, a in recorded.items() if i in prompt_of}
            backend = TestBackend(f"demo-{tag}", BackendKnobs(answers=table))
            self._on_loop(backend.start())
            self.backends[tag] = backend
        anchors = suite_anchors(demo_suite_path())
        self._bg = BackgroundServer(
            self.data_dir,
            time_scale=self.time_scale,
            rollout=RolloutOptions(tick_interval_s=0.1, anchors=lambda sha: anchors),
            gate=GateOptions(score_cache=self._score_cache),
            web_extension=dashboard.mount,
        )
        self._running = self._bg.start()
        assert self._running.admin_key_path is not None
        self.admin_key = self._running.admin_key_path.read_text().strip()
        suite_sha = load_suite(demo_suite_path()).sha256
        with contextlib.closing(self.gate_client()) as client:
            prev: str | None = None
            for tag in TAGS:
                doc = _manifest(tag, self.backends[tag].base_url, suite_sha, prev)
                reply = client.register_release(canonical_json(doc))
                self.shas[tag] = prev = reply.release.sha256
        return self

    def gate_client(self) -> RelgateClient:
        """A gate client with the admin key (close it)."""
        from relgate.client import RelgateClient

        return RelgateClient(self.running.address, api_key=self.admin_key, timeout=120)

    def rollout_client(self) -> RelgateClient:
        """A rollout client with the admin key (close it)."""
        from relgate.client import RelgateClient

        return RelgateClient(self.running.address, api_key=self.admin_key, timeout=120)

    def stop(self) -> None:
        """Stop the server and the backends."""
        if self._bg is not None:
            self._bg.stop()
            self._bg = None
        for backend in self.backends.values():
            self._on_loop(backend.stop())
        self.backends.clear()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> DemoWorld:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Traffic:
    """Generated traffic on a background thread until ``stop``: the demo's users."""

    def __init__(
        self,
        url: str,
        prompts: list[str],
        slices: list[str],
        rate: float,
        *,
        max_in_flight: int = 256,
        timeout_s: float = 30.0,
    ) -> None:
        from relgate.testing.loadgen import LoadSpec

        self.served: Counter[str] = Counter()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._spec = LoadSpec(
            url=url,
            rate_per_s=rate,
            max_requests=10_000_000,
            max_seconds=3600,
            sessions=5000,
            session_prefix="user-",
            slices=tuple(slices),
            prompts=tuple(prompts),
            max_in_flight=max_in_flight,
            timeout_s=timeout_s,
        )
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        from relgate.testing.loadgen import run_load

        async def go() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await run_load(self._spec, on_response=self._count, stop=self._stop)

        asyncio.run(go())

    def _count(self, record: Any) -> None:
        if record.status == 200:
            self.served[record.release] += 1

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


def _follow(
    console: Console,
    client: RelgateClient,
    rollout_id: str,
    done: Callable[[Any], bool],
    timeout_s: float,
) -> Any:
    """Print each change of the rollout until ``done(rollout)`` (polling; a deadline)."""
    last_key: tuple[int, int] | None = None
    printed = 0.0
    deadline = time.monotonic() + timeout_s
    while True:
        ro = client.get_rollout(rollout_id)
        st = ro.status
        key = (st.phase, st.weight_bp)
        now = time.monotonic()
        # A line when the phase or the weight changes, else a heartbeat every 3 s.
        if key != last_key or now - printed > 3.0:
            line = f"{_PHASES.get(st.phase, '?'):>12}  {st.weight_bp / 100:>5g}%  {st.message}"
            console.print(f"  {line[:160]}", markup=False)
            last_key, printed = key, now
        if done(ro):
            return ro
        if now > deadline:
            console.print(f"  [red]gave up after {timeout_s:.0f}s[/red]")
            return ro
        time.sleep(0.2)


def _caught(running: RunningServer, sha: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The slice the quality monitor's auto_rollback names first (worst first) and its rows."""
    rb = [r for r in running.store.list_receipts(release_sha=sha) if r.kind == "auto_rollback"]
    if not rb:
        return None, []
    quality: dict[str, Any] = next(
        (m for m in rb[0].evidence.get("monitors", []) if m["monitor"] == "quality"), {}
    )
    rows: list[dict[str, Any]] = quality.get("slices", [])
    first = rows[0]["slice"] if rows and rows[0].get("verdict") == "FAIL" else None
    return first, rows


def roll_chapter(
    console: Console, world: DemoWorld, gates: GateChapter, *, rate: float = 120.0
) -> RollChapterResult:
    """Roll v0, v1 and v2 on ``world`` after the gate chapter ``gates`` (see the module
    docstring). Raises ``StoryBroken`` when a step does not happen as told."""
    t0 = time.monotonic()
    result = RollChapterResult()
    running, shas = world.running, world.shas
    console.rule("[bold]3. Roll and observe[/bold] (canary, catch, automatic rollback)")
    for backend in world.backends.values():
        backend.set_knobs(base_latency_s=SERVING_LATENCY_S)
    suite = pl.read_csv(demo_suite_path()).unique("item_id", keep="first").sort("item_id")
    # Traffic on four large slices (a slice with too few replayable traces keeps the quality
    # monitor INCONCLUSIVE, by design).
    suite = suite.filter(pl.col("slice").is_in(DEMO_SLICES))
    traffic: _Traffic | None = None
    try:
        with (
            contextlib.closing(world.rollout_client()) as c,
            contextlib.closing(world.gate_client()) as gc,
        ):
            boot = c.start_rollout(shas["v0"], overrides={"shadow_s": 0}, reason="import v0")
            c.control("Promote", boot.rollout_id, "v0 is what production serves today")
            result.v0_live = running.rollouts.live_release("default") == shas["v0"]
            traffic = _Traffic(
                running.gateway_url + "/v1/chat/completions",
                suite["prompt"].to_list(),
                suite["slice"].to_list(),
                rate,
            )
            console.print(
                f"v0 (cold start, overridden) shadowed 0 s and promoted by a human: live "
                f"{'yes' if result.v0_live else 'NO'}; traffic at {rate:g} req/s over "
                f"{len(DEMO_SLICES)} slices through the gateway {running.gateway_url} "
                f"(clock x{world.time_scale:g})"
            )
            console.print("[bold]v1[/bold] gate passed; canary 5% -> 25% -> 100%")
            ro = c.start_rollout(shas["v1"], overrides=DEMO_SPEC, reason="demo v1")
            _follow(console, c, ro.rollout_id, lambda r: r.status.phase >= 3, 120)
            result.v1_live = running.rollouts.live_release("default") == shas["v1"]
            if not result.v1_live:
                last = running.store.list_receipts(release_sha=shas["v1"])[-1]
                why = last.evidence.get("reason", "")
                raise StoryBroken(f"v1 did not reach 100% ({last.kind}: {why})")

            failed = ", ".join(gates.failed_slices) or "-"
            override = gc.override_gate(
                shas["v2"], V2_RATIONALE, gate_result_sha256=gates.v2.gate_result_sha256
            )
            console.print(
                f"[bold]v2[/bold] gate FAILED on {failed}; overridden through OverrideGate "
                f"(gate_override_sha256 {override.gate_override_sha256[:12]}) with the "
                f"rationale [italic]{V2_RATIONALE}[/italic]; canary"
            )
            ro2 = c.start_rollout(shas["v2"], overrides=DEMO_SPEC, reason="demo v2 (override)")
            end = _follow(
                console,
                c,
                ro2.rollout_id,
                lambda r: r.status.phase >= 3 and r.status.phase != 5,
                120,
            )
            result.v2_rolled_back = end.status.phase == 8
            result.caught_at_weight_bp = end.status.weight_bp
            result.caught_slice, rows = _caught(running, shas["v2"])
            for row in rows:
                q = "-" if row["q"] is None else f"{row['q']:.3f}"
                console.print(
                    f"    {row['slice']:<14} q={q:>7}  n={row['n']:<3} {row['verdict']}",
                    markup=False,
                )
            live = running.rollouts.live_release("default")
            result.live_after = live
            tag = next((t for t, s in shas.items() if s == live), "?")
            state = "rolled back automatically" if result.v2_rolled_back else "NOT rolled back"
            console.print(
                f"v2 {state} at {(result.caught_at_weight_bp or 0) / 100:g}%, caught on "
                f"{result.caught_slice or 'nothing'}; live release now {(live or '-')[:12]} "
                f"({tag})",
                markup=False,
            )
    finally:
        if traffic is not None:
            traffic.stop()
            result.served = {tag: traffic.served[sha] for tag, sha in shas.items()}
    console.print("requests served: " + ", ".join(f"{t} {n}" for t, n in result.served.items()))
    result.elapsed_s = time.monotonic() - t0
    return result


class ServerWorld(Protocol):
    """What the receipts chapter needs of a demo world (``DemoWorld``, ``RealWorld``)."""

    @property
    def running(self) -> RunningServer: ...

    def gate_client(self) -> RelgateClient: ...


def receipts_chapter(console: Console, world: ServerWorld, out: Path) -> ReceiptsResult:
    """Export the tenant's receipt bundle to ``out`` and verify it offline."""
    console.rule("[bold]4. Receipts[/bold] (exported, verified offline)")
    bundle = export_bundle(world.running.store, tenant="default")
    out.write_text(json.dumps(bundle))
    # Pinned to the server's key, fetched as `relgate receipts key` does.
    with world.gate_client() as client:
        key = client.tree_head_key().public_key_b64
    report = verify_bundle(out, trust=Trust.pinned([key]))
    status = "VERIFIED" if report.ok else f"FAILED: {report.first_error}"
    console.print(f"receipts: {report.receipts} exported to {out}; offline verification {status}")
    return ReceiptsResult(path=out, receipts=report.receipts, verified=report.ok)
