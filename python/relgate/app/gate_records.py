"""What a gate decision is, on record: the stored ``GateRecord``, how its verdict, outcome and
reason follow from a ``GateResult`` (a cold start never passes on its own), the digests that
name a sample set and an override, and ``gate_clearance``, the check a rollout makes before it
starts. ``relgate.app.gates.GateRunner`` produces these records; the rollout manager and the
dashboard only read them (the module docstring of ``relgate.app.gates`` gives the fact
contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from relgate.answers import Answers
from relgate.canonical import canonical_json, jsonl_sha256, sha256_hex
from relgate.errors import GateError, InvalidInputError
from relgate.gate.calibration import Calibration
from relgate.gate.result import GateResult
from relgate.gate.verdict import GateOutcome, GateScores
from relgate.manifest import GatePolicy
from relgate.receipts.model import Receipt
from relgate.store import Store

__all__ = [
    "COLD_START_REASON",
    "GateRecord",
    "gate_clearance",
    "merge_policy",
    "outcome_of",
    "override_sha256",
    "reason_of",
    "sample_set_sha256",
    "verdict_of",
]


@dataclass(frozen=True)
class GateRecord:
    """A gate result as stored (or a what-if re-application): the result body
    (``GateResult.to_dict`` plus ``sha256``), its fact payload and receipt, and the state."""

    release_sha: str
    body: dict[str, Any]
    fact: dict[str, Any]
    report_html: Path
    receipt: Receipt | None
    calibration: Calibration
    override: dict[str, Any] | None = None
    what_if: bool = False

    @property
    def gate_result_sha256(self) -> str:
        """SHA-256 over the canonical result (what an override names)."""
        return str(self.body["sha256"])

    @property
    def archived(self) -> bool:
        """A failed gate archives the release, until an override opens it."""
        return self.fact.get("verdict") == "fail" and self.override is None


def override_sha256(release_sha: str, gate_result_sha: str, rationale: str, actor: str) -> str:
    """SHA-256 over the canonical JSON of ``{release_sha256, gate_result_sha256, rationale,
    actor}`` (docs/design.md §3)."""
    return sha256_hex(
        canonical_json(
            {
                "release_sha256": release_sha,
                "gate_result_sha256": gate_result_sha,
                "rationale": rationale,
                "actor": actor,
            }
        )
    )


def merge_policy(base: GatePolicy, overrides: Mapping[str, Any]) -> GatePolicy:
    """``base`` with ``overrides`` applied, validated as the manifest validates policies."""
    try:
        return GatePolicy.model_validate({**base.model_dump(), **dict(overrides)})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise InvalidInputError(f"gate policy: {problems}") from None


def sample_set_sha256(scores: GateScores, answers: Answers) -> str:
    """SHA-256 over the sorted RFC 8785 lines ``{item_id, answer_sha256, reference_sha256,
    score}`` of the candidate's scored rows: the sample set the verdict was computed on."""
    rows = scores.rows
    return jsonl_sha256(
        {
            "item_id": item,
            "answer_sha256": answers.answer_sha256[item],
            "reference_sha256": ref,
            "score": float(score),
        }
        for item, ref, score in zip(
            rows["item_id"].to_list(),
            rows["reference_sha256"].to_list(),
            rows["x_candidate"].to_list(),
            strict=True,
        )
    )


COLD_START_REASON = "cold start: no previous release; passes only through a gate override"


def verdict_of(result: GateResult, cold_start: bool) -> str:
    """``pass`` or ``fail``: a cold start fails whatever its slices say (docs/design.md §3:
    it can pass only through the override, and is then shadowed)."""
    return "pass" if result.outcome == GateOutcome.PASS and not cold_start else "fail"


def outcome_of(result: GateResult, cold_start: bool) -> str:
    """The recorded outcome: the result's, except that a cold start's pass is a fail."""
    if cold_start and result.outcome == GateOutcome.PASS:
        return GateOutcome.FAIL.value
    return result.outcome.value


def reason_of(result: GateResult, cold_start: bool = False) -> str:
    if cold_start:
        text = COLD_START_REASON
        if result.failed_slices:
            text += f"; failed slices: {', '.join(result.failed_slices)}"
    elif result.outcome == GateOutcome.FAIL:
        text = f"gate failed on {', '.join(result.failed_slices)}"
    elif result.outcome == GateOutcome.INSUFFICIENT:
        text = "gate could not vouch for the release (insufficient)"
    else:
        text = "gate passed"
    if result.unvouched:
        text += f"; not vouched for: {', '.join(result.unvouched)}"
    return text


def gate_clearance(store: Store, release_sha: str, tenant: str) -> dict[str, Any]:
    """The gate evidence that lets ``release_sha`` roll: its latest gate_result with verdict
    pass, or a gate_override of that latest result (an override names the
    ``gate_result_sha256`` it read; one made before a newer gate run does not clear the newer
    result). Raises ``GateError`` otherwise."""
    results = store.facts(release_sha, "gate_result", tenant=tenant)
    latest = results[-1].payload if results else None
    latest_sha = latest.get("gate_result_sha256") if latest is not None else None
    overrides = [
        f.payload
        for f in store.facts(release_sha, "gate_override", tenant=tenant)
        if latest_sha is not None and f.payload.get("gate_result_sha256") == latest_sha
    ]
    if overrides:
        return {"gate_override": overrides[-1], "gate_result": latest}
    if latest is not None and latest.get("verdict") == "pass":
        return {"gate_result": latest}
    if latest is None:
        why = "it has no gate result"
    elif store.facts(release_sha, "gate_override", tenant=tenant):
        why = (
            f"its latest gate result {latest_sha} failed and was not overridden (an override "
            "of an older gate result does not clear a newer one)"
        )
    else:
        why = "its gate failed and there is no gate override"
    raise GateError(
        f"release {release_sha} cannot roll: {why} "
        "(run the gate, or force an override of the latest result with a rationale)"
    )
