"""What the dashboard shows, read from the store: releases, gate results and receipts.

Read-only: nothing here writes to the store. The receipt chain is verified with
``relgate.receipts.verify_bundle`` over a bundle assembled in memory (a fresh tree head is
signed when the stored ones do not cover every receipt, but it is not stored: a page view
is not a decision). Rollouts are in ``relgate.dashboard.rollouts``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from relgate.errors import IntegrityError
from relgate.gate.calibration import SliceCalibration
from relgate.gate.report import load_scores, render_svg
from relgate.gate.result import GateResult
from relgate.gate.verdict import GateOutcome, SliceResult, SliceVerdict
from relgate.manifest import ApiModel, HfModel, ReleaseManifest
from relgate.receipts.bundle import BundleReport, assemble_bundle, verify_bundle
from relgate.receipts.model import Receipt, live_release_of, weights_evidence
from relgate.receipts.tree import TreeHeadSigner
from relgate.store import Store
from relgate.store.records import StoredRelease

__all__ = [
    "ChainView",
    "DashboardData",
    "GateRecordLike",
    "GateSource",
    "GateView",
    "ReleaseRow",
    "ReleaseView",
]


class GateRecordLike(Protocol):
    """What the dashboard reads of ``relgate.app.gates.GateRecord``."""

    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def fact(self) -> dict[str, Any]: ...
    @property
    def report_html(self) -> Path: ...
    @property
    def override(self) -> dict[str, Any] | None: ...


class GateSource(Protocol):
    """The server's gate runner (``relgate.app.gates.GateRunner``): its ``latest``."""

    def latest(self, release_sha: str, tenant: str) -> GateRecordLike: ...


def model_label(manifest: ReleaseManifest) -> str:
    """``provider/model`` for API models, ``repo@revision`` for HF, the path for local."""
    m = manifest.model
    if isinstance(m, ApiModel):
        return f"{m.provider}/{m.model}"
    if isinstance(m, HfModel):
        return f"{m.repo}@{m.revision}"
    return str(m.path)


@dataclass(frozen=True)
class ReleaseRow:
    """One line of the releases list."""

    sha256: str
    release_id: str
    model: str
    prompt_ref: str
    gate: str
    rollout_phase: str
    rollout_id: str | None
    actor: str
    created_at: str
    #: This release serves the tenant's traffic now (``receipts.model.live_release_of``).
    live: bool = False

    @property
    def gated(self) -> bool:
        """A gate result or an override exists (the gate page has something to show)."""
        return self.gate != "not gated"


@dataclass(frozen=True)
class ChainView:
    """Receipts in chain order with their verification status (``verify_bundle``)."""

    receipts: list[Receipt]
    report: BundleReport
    # receipt sha -> "verified" | "broken" | "not checked" (after the first broken link)
    status: dict[str, str]
    head: dict[str, Any] | None
    stored_heads: list[dict[str, Any]]
    anchors: list[dict[str, Any]]


@dataclass(frozen=True)
class ReleaseView:
    """A release page: manifest, weights statement, its own receipt chain."""

    release: StoredRelease
    manifest_json: str
    weights: dict[str, Any]
    receipts: list[Receipt]
    chain_status: dict[str, str]
    gate: str
    rollout_ids: list[str]
    live: bool = False


@dataclass(frozen=True)
class GateView:
    """The latest gate result of a release.

    ``result`` is the full ``GateResult`` rebuilt from the stored report (None when the gate
    was recorded without one); ``chart_svg`` is ``relgate.gate.report.render_svg`` of it.
    """

    release: StoredRelease
    fact: dict[str, Any]
    result: GateResult | None
    chart_svg: str | None
    override: dict[str, Any] | None
    # Per slice, worst first: the gate's result beside the judge's ceiling on that slice.
    calibration: list[tuple[SliceResult, SliceCalibration | None]] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


_FLOAT_FIELDS = {f.name for f in dataclasses.fields(SliceResult) if f.type in ("float", float)}


def _slice_result(raw: dict[str, Any]) -> SliceResult:
    """A ``SliceResult`` from its stored ``asdict`` form (null for NaN)."""
    kw: dict[str, Any] = dict(raw)
    for name in _FLOAT_FIELDS:
        if name in kw:
            kw[name] = _num(kw[name])
    kw["verdict"] = SliceVerdict(kw["verdict"])
    kw["reasons"] = tuple(kw.get("reasons", ()))
    return SliceResult(**kw)


def rebuild_result(body: dict[str, Any], report_dir: Path) -> GateResult:
    """The ``GateResult`` a stored report was written from: per-slice results as decided,
    per-row scores and calibration read back (``relgate.gate.report.load_scores``)."""
    scores, calibration = load_scores(report_dir)
    return GateResult(
        outcome=GateOutcome(body["outcome"]),
        slices=tuple(_slice_result(s) for s in body["slices"]),
        policy=dict(body["policy"]),
        scores=scores,
        calibration=calibration,
    )


class DashboardData:
    """Read access for the dashboard. Blocking (call from a worker thread)."""

    def __init__(
        self,
        store: Store,
        *,
        signer: TreeHeadSigner | None = None,
        gates: GateSource | None = None,
        rollout_phase: Callable[[str, str], tuple[str, str | None]] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer or TreeHeadSigner(store.data_dir)
        self.gates = gates
        # (tenant, release sha) -> (phase text, latest rollout id); set by the dashboard app.
        self.rollout_phase = rollout_phase or (lambda tenant, sha: ("-", None))
        self._chain_cache: dict[str, tuple[str, ChainView]] = {}
        self._lock = threading.Lock()

    # ---- releases ---------------------------------------------------------------------------

    def release_of(self, sha: str, tenant: str) -> StoredRelease:
        """The tenant's release (``NotFoundError`` for another tenant's: existence is data)."""
        return self.store.get_release(sha, tenant=tenant)

    def gate_summary(self, sha: str, tenant: str) -> str:
        """``pass``, ``fail``, ``fail, overridden``, ``not gated``, ..."""
        results = self.store.facts(sha, "gate_result", tenant=tenant)
        overridden = bool(self.store.facts(sha, "gate_override", tenant=tenant))
        if not results:
            return "not gated, overridden" if overridden else "not gated"
        verdict = str(results[-1].payload.get("verdict", "?"))
        return f"{verdict}, overridden" if overridden else verdict

    def live_release(self, tenant: str) -> str | None:
        """The release serving the tenant's traffic now (None: nothing is live)."""
        return live_release_of(self.store.list_receipts(tenant=tenant))

    def releases(self, tenant: str) -> list[ReleaseRow]:
        """The tenant's releases, newest first, with gate verdict and rollout phase."""
        rows = []
        live = self.live_release(tenant)
        for r in self.store.list_releases(tenant=tenant, limit=500):
            phase, rid = self.rollout_phase(tenant, r.sha256)
            rows.append(
                ReleaseRow(
                    sha256=r.sha256,
                    release_id=r.release_id,
                    model=model_label(r.manifest),
                    prompt_ref=r.manifest.prompt_template.ref,
                    gate=self.gate_summary(r.sha256, tenant),
                    rollout_phase=phase,
                    rollout_id=rid,
                    actor=r.actor,
                    created_at=r.created_at,
                    live=r.sha256 == live,
                )
            )
        return rows

    def release(self, sha: str, tenant: str, rollout_ids: Sequence[str] = ()) -> ReleaseView:
        """The release page's data."""
        stored = self.release_of(sha, tenant)
        manifest = stored.manifest
        if manifest.open_weights:
            att = manifest.weights_attestation
            weights: dict[str, Any] = {
                "attestable": True,
                "attestation": att,
                "why": None
                if att
                else "the weights were not reachable when the release was registered",
            }
        else:
            weights = weights_evidence(manifest, None)
        chain = self.chain(tenant)
        mine = [r for r in chain.receipts if r.release_sha256 == stored.sha256]
        return ReleaseView(
            release=stored,
            manifest_json=json.dumps(manifest.to_dict(), indent=2, sort_keys=True),
            weights=weights,
            receipts=mine,
            chain_status=chain.status,
            gate=self.gate_summary(stored.sha256, tenant),
            rollout_ids=list(rollout_ids),
            live=live_release_of(chain.receipts) == stored.sha256,
        )

    # ---- gate -------------------------------------------------------------------------------

    def gate(self, sha: str, tenant: str) -> GateView:
        """The release's latest gate result (an empty view when it was never gated: the page
        says "not gated", a link to it is never dead)."""
        stored = self.release_of(sha, tenant)
        facts = self.store.facts(stored.sha256, "gate_result", tenant=tenant)
        overrides = self.store.facts(stored.sha256, "gate_override", tenant=tenant)
        override = overrides[-1].payload if overrides else None
        if not facts:
            return GateView(stored, {}, None, None, override)
        fact = facts[-1].payload
        if self.gates is None or "report_dir" not in fact:
            # Recorded without a stored report: the verdict and the slices it names only.
            return GateView(stored, fact, None, None, override)
        record = self.gates.latest(stored.sha256, tenant)
        result = rebuild_result(record.body, record.report_html.parent)
        recorded = str(record.fact.get("gate_result_sha256"))
        if result.sha256 != recorded:
            # What the page would draw is not what the receipt recorded: show neither.
            raise IntegrityError(
                f"the stored gate report of {stored.sha256} does not hash to the recorded "
                "gate_result_sha256",
                path=str(record.report_html.parent),
                rule="gate_result_sha256_mismatch",
                expected=recorded,
                actual=result.sha256,
            )
        calibration = [(r, result.calibration.for_slice(r.slice)) for r in result.slices]
        return GateView(
            release=stored,
            fact=record.fact,
            result=result,
            chart_svg=render_svg(result),
            override=record.override or override,
            calibration=calibration,
            aggregate=dict(record.body.get("aggregate", {})),
        )

    # ---- receipts ---------------------------------------------------------------------------

    def chain(self, tenant: str) -> ChainView:
        """The tenant's receipts, verified (cached while the stored receipts are unchanged)."""
        rows = self.store.receipt_rows(tenant=tenant)
        # Keyed by the stored bytes, not the count: a row altered in place must be re-verified.
        digest = hashlib.sha256("\n".join(f"{sha}:{body}" for _, sha, body in rows).encode())
        key = digest.hexdigest()
        with self._lock:
            hit = self._chain_cache.get(tenant)
        if hit is not None and hit[0] == key:
            return hit[1]
        bundle = self.bundle(tenant, rows)
        report = verify_bundle(bundle, public_key_b64=self.signer.public_key_b64)
        receipts = self.store.list_receipts(tenant=tenant)
        bad = report.first_error.index if report.first_error is not None else len(receipts)
        status = {
            r.receipt_sha256: "verified" if i < bad else "broken" if i == bad else "not checked"
            for i, r in enumerate(receipts)
        }
        heads = bundle["tree_heads"]
        view = ChainView(
            receipts=receipts,
            report=report,
            status=status,
            head=heads[-1] if heads else None,
            stored_heads=self.store.audit.tree_heads(tenant=tenant),
            anchors=self.store.audit.anchors(tenant=tenant),
        )
        with self._lock:
            self._chain_cache[tenant] = (key, view)
        return view

    def bundle(
        self, tenant: str, rows: Sequence[tuple[int, str, str]] | None = None
    ) -> dict[str, Any]:
        """The tenant's export bundle, assembled in memory (nothing is stored)."""
        bundle, _fresh = assemble_bundle(
            tenant=tenant,
            rows=rows if rows is not None else self.store.receipt_rows(tenant=tenant),
            signer=self.signer,
            stored_heads=self.store.audit.tree_heads(tenant=tenant),
            anchors=self.store.audit.anchors(tenant=tenant),
            timestamp=self.store.now(),
        )
        return bundle
