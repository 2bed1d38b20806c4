"""State for the dashboard's route tests, built through the same code paths the server uses.

- releases: ``Store.register_release`` (what RegisterRelease calls);
- gates: the server's own ``GateRunner`` (``running.gates``) on the shipped demo suite with the
  recorded v1/v2 answers; the judge is a TEST DOUBLE (word overlap, milliseconds instead of
  MiniLM's minutes), injected through ``GateOptions.judge_factory``;
- the override: ``GateRunner.override``;
- a rollout of v2 against v1: a ``RolloutController`` persisting through ``StoreFactLog``
  (what the rollout service runs), fed TEST readings on a manual clock: latency and 5xx fine,
  the Law slice's replay quality collapsed, so the controller rolls back automatically.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relgate import dashboard
from relgate.access import Role
from relgate.app.gates import GateOptions, GateRequest
from relgate.app.rollout_runtime import StoreFactLog
from relgate.data import demo_answers_path
from relgate.gate.sources import AnswerChoice
from relgate.manifest import ReleaseManifest
from relgate.rollout.clock import ManualClock
from relgate.rollout.controller import Readings, RolloutController
from relgate.rollout.monitors import ErrorRateReading, LatencyReading, QualityReading, SliceQuality
from relgate.rollout.spec import RolloutSpec
from relgate.service.auth import create_key
from relgate.service.server import BackgroundServer, RunningServer
from relgate.suite import load_suite
from relgate.testing.judges import WordOverlapJudge

DEMO_SUITE = "truthfulqa-demo"
ROLLOUT_ID = "ro_dashboardtest0001"
INCONCLUSIVE_ID = "ro_dashboardtest0002"
COMPLETED_ID = "ro_dashboardtest0003"
SPEC: dict[str, Any] = {
    "steps": [
        {"weight_bp": 500, "dwell_s": 60, "min_requests": 5, "deadline_s": 600},
        {"weight_bp": 2500, "dwell_s": 60, "min_requests": 5, "deadline_s": 600},
        {"weight_bp": 10000},
    ],
    "thresholds": {"min_latency_samples": 5, "min_error_requests": 5, "min_replay_rows": 10},
}


def manifest(tag: str, previous: str | None, suite_sha: str) -> ReleaseManifest:
    """A closed-weight release on the demo suite."""
    doc = {
        "model": {
            "kind": "api",
            "provider": "demo",
            "model": f"demo-{tag}",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {
            "ref": f"demo/{tag}",
            "system": "Answer truthfully and briefly.",
            "template": "{input}",
            "variables": ["input"],
        },
        "routing": [{}],
        "dataset": {"ref": DEMO_SUITE, "sha256": suite_sha},
        "previous_release": previous,
        # The word-overlap TEST DOUBLE judge scores the model's wordy answers far under the
        # default floor (tuned for MiniLM on good answers), so these releases are gated on
        # their change against the previous release alone; and it sees v2's one-word Law
        # answers only dimly (change -0.48, CI [-0.82, -0.17], Holm p 0.2 over 38 slices), so
        # this world's family-wise alpha is 0.25. v1 and v2 differ on Law alone: no other
        # slice can fail.
        "gate_policy": {"floor": -1.0, "alpha": 0.25},
    }
    return ReleaseManifest.parse(json.dumps(doc).encode())


@dataclass
class World:
    """A running server with v1 (gate pass), v2 (gate fail on some slice, overridden, rolled
    back by the controller) and keys of each role."""

    server: RunningServer
    keys: dict[str, str]
    shas: dict[str, str] = field(default_factory=dict)
    rollout_id: str = ROLLOUT_ID

    @property
    def url(self) -> str:
        return self.server.web_url


def start_server(tmp: Path) -> BackgroundServer:
    """A server with the test-double judge, no gateway, a manual rollout clock."""
    from relgate.app.rollouts import RolloutOptions

    return BackgroundServer(
        tmp / "data",
        gateway_port=None,
        gate=GateOptions(judge_factory=lambda choice: WordOverlapJudge("d0" * 32)),
        rollout=RolloutOptions(clock=ManualClock()),
        web_extension=dashboard.mount,
    )


def _quality(law_rho: float) -> QualityReading:
    return QualityReading(
        slices=(
            SliceQuality("Law", 40, law_rho, 0.5),
            SliceQuality("Health", 40, 0.5, 0.5),
        ),
        judge_sha256="d0" * 32,
    )


def build_world(running: RunningServer) -> World:
    """Register, gate, override and roll (see the module docstring)."""
    store = running.store
    assert running.gates is not None
    keys = {
        role.label: create_key(store.keys, role=role, name=f"test-{role.label}")
        for role in (Role.VIEWER, Role.RELEASER, Role.ADMIN)
    }
    world = World(server=running, keys=keys)
    from relgate.data import demo_suite_path

    suite_sha = load_suite(demo_suite_path()).sha256
    prev = None
    for tag in ("v1", "v2"):
        reg = store.register_release(manifest(tag, prev, suite_sha), actor="key:test-releaser")
        world.shas[tag] = prev = reg.release.sha256
    for tag in ("v1", "v2"):
        running.gates.run(
            GateRequest(
                release_sha=world.shas[tag],
                tenant="default",
                actor="key:test-releaser",
                answers=AnswerChoice("recorded", str(demo_answers_path(tag))),
            )
        )
    running.gates.override(
        world.shas["v2"],
        rationale="ship v2 to show the canary catching what the gate caught",
        actor="key:test-admin",
        tenant="default",
    )
    _roll_back(running, world)
    # v3 (after v1) gets no monitor readings at all: its hold extends, then its deadline
    # passes and the rollout pauses as INCONCLUSIVE.
    reg = store.register_release(
        manifest("v3", world.shas["v1"], suite_sha), actor="key:test-releaser"
    )
    world.shas["v3"] = reg.release.sha256
    running.gates.run(
        GateRequest(
            release_sha=world.shas["v3"],
            tenant="default",
            actor="key:test-releaser",
            answers=AnswerChoice("recorded", str(demo_answers_path("v1"))),
        )
    )
    _starve(running, world)
    # v4 (after v1, never gated) completes its rollout; then an admin rolls back to v1.
    reg = store.register_release(
        manifest("v4", world.shas["v1"], suite_sha), actor="key:test-releaser"
    )
    world.shas["v4"] = reg.release.sha256
    _complete_then_roll_back(running, world)
    return world


class _NoRouting:
    """No data plane: these rollouts are decided from TEST readings only."""

    def set_weight(self, weight_bp: int) -> None: ...
    def swap_to(self, release: str) -> None: ...
    def set_shadow(self, enabled: bool) -> None: ...


def _controller(
    running: RunningServer, candidate: str, stable: str, rid: str, clock: ManualClock
) -> tuple[RolloutController, list[Readings]]:
    flog = StoreFactLog(
        running.store, tenant="default", candidate=candidate, stable=stable, rollout_id=rid
    )
    feed: list[Readings] = []

    def readings() -> Readings:
        return feed.pop(0) if feed else Readings()

    controller = RolloutController(
        RolloutSpec().with_overrides(SPEC),
        candidate=candidate,
        stable=stable,
        clock=clock,
        readings=readings,
        routing=_NoRouting(),
        record=flog.record,
        log=flog,
        rollout_id=rid,
    )
    return controller, feed


def _starve(running: RunningServer, world: World) -> None:
    clock = ManualClock(2_000_000.0)
    controller, feed = _controller(
        running, world.shas["v3"], world.shas["v1"], INCONCLUSIVE_ID, clock
    )
    controller.tick()  # started, step 1 at 5%
    clock.advance(70)
    feed.append(Readings(requests=10))
    controller.tick()  # hold met, no monitor has a reading: the hold extends
    clock.advance(600)
    controller.tick()  # deadline passed without evidence: INCONCLUSIVE, paused


def _complete_then_roll_back(running: RunningServer, world: World) -> None:
    clock = ManualClock(3_000_000.0)
    v1, v4 = world.shas["v1"], world.shas["v4"]
    controller, feed = _controller(running, v4, v1, COMPLETED_ID, clock)
    controller.tick()  # started, step 1 at 5%
    latency = LatencyReading(0.20, 0.19, 50, 900)
    errors = ErrorRateReading(0, 50, 1, 900)
    for _ in range(3):
        clock.advance(70)
        feed.append(Readings(requests=20, latency=latency, errors=errors, quality=_quality(0.5)))
        controller.tick()  # hold met, monitors pass: the next step
    assert controller.status.completed_at is not None, controller.status
    # What RolloutManager.rollback writes (one atomic swap back, a manual_rollback receipt).
    running.store.record_decision(
        tenant="default",
        release_sha=v1,
        kind="manual_rollback",
        evidence={"from": v4, "to": v1, "live_release": v1, "at": clock()},
        actor="key:test-admin",
        reason="v4 answers badly in production",
        facts=[("live_release", {"from": v4, "to": v1})],
    )


def _roll_back(running: RunningServer, world: World) -> None:
    clock = ManualClock(1_000_000.0)
    controller, feed = _controller(
        running, world.shas["v2"], world.shas["v1"], world.rollout_id, clock
    )
    controller.tick()  # started, step 1 at 5%
    latency = LatencyReading(0.20, 0.19, 50, 900)
    errors = ErrorRateReading(0, 50, 1, 900)
    clock.advance(30)
    feed.append(Readings(requests=20, latency=latency, errors=errors, quality=_quality(0.45)))
    controller.tick()  # holding: dwell not met, all monitors pass
    clock.advance(40)
    feed.append(Readings(requests=20, latency=latency, errors=errors, quality=_quality(0.45)))
    controller.tick()  # promote to 25%
    clock.advance(20)
    feed.append(Readings(requests=30, latency=latency, errors=errors, quality=_quality(-0.1)))
    controller.tick()  # Law collapses: automatic rollback


def get(url: str, *, key: str | None = None, cookie: str | None = None) -> tuple[int, str]:
    """GET ``url``: (status, body text); never raises on HTTP errors."""
    req = urllib.request.Request(url)
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    if cookie is not None:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")
