"""The state read at scrape time (``relgate.service.state_metrics``) on a store alone: every
receipt kind, gate verdicts, the live release's per-slice gate q, and the anchoring lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import RECEIPT_KINDS
from relgate.service.state_metrics import StateCollector
from relgate.store import Store
from service_helpers import manifest_bytes


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class LiveOnly:
    """What the collector reads of a RolloutManager: no rollouts, one live release."""

    def __init__(self, sha: str) -> None:
        self.sha = sha

    def latest_rollouts(self) -> list[object]:
        return []

    def live_release(self, tenant: str) -> str | None:
        return self.sha if tenant == "default" else None


def samples(collector: StateCollector) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_receipts_gates_slice_q_and_anchor_lag(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(data_dir=tmp_path, clock=clock)
    sha = store.register_release(
        ReleaseManifest.parse(manifest_bytes(1)), actor="t", attest=False
    ).release.sha256
    slices = [{"slice": "Law", "q": 0.41}, {"slice": "Health", "q": 0.93},
              {"slice": "Empty", "q": None}]  # fmt: skip
    store.record_decision(
        tenant="default", release_sha=sha, kind="gate_fail",
        evidence={"verdict": "fail", "slices": slices}, actor="t", reason="gate",
        facts=[("gate_result", {"verdict": "fail"})],
    )  # fmt: skip
    store.audit.add_anchor(tenant="default", tree_size=2, root_hex="ab" * 32, sink="dir", ref="x")
    clock.now += timedelta(seconds=90)

    got = samples(StateCollector(store, LiveOnly(sha)))  # type: ignore[arg-type]
    for kind in RECEIPT_KINDS:
        expected = 1.0 if kind in ("register", "gate_fail") else 0.0
        assert got[("relgate_receipts_emitted_total", frozenset({("kind", kind)}))] == expected
    verdict = frozenset({("tenant", "default"), ("verdict", "fail")})
    assert got[("relgate_gate_verdicts_total", verdict)] == 1
    q = {dict(ls)["slice"]: v for (n, ls), v in got.items() if n == "relgate_gate_slice_q"}
    assert q == {"Law": 0.41, "Health": 0.93}  # an undefined q is absent, not NaN
    assert got[("relgate_anchor_lag_seconds", frozenset({("tenant", "default")}))] == 90
    live = frozenset({("tenant", "default"), ("release", sha[:12])})
    assert got[("relgate_live_release_info", live)] == 1
    store.close()
