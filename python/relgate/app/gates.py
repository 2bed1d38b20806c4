"""The server-side gate: run the gate on a registered release, record the decision, override.

``GateRunner.run`` resolves the suite the manifest pins (``relgate.gate.sources``), gets the
release's answers and the previous release's answers (stored by its own gate run), scores
them with the judge through the score cache in the data directory, calibrates the judge on
the suite (one artifact per judge, suite and bootstrap settings, reused), applies the policy,
writes the reports, and records one decision: a ``gate_pass`` or ``gate_fail`` receipt with
its facts in one transaction.

Every run is also a gate run in the store (``relgate.app.gate_runs``: attached to, resumed
after a restart by the leader from the stored answers and the score cache); ``run`` takes the
stored answers of an earlier attempt for that. The judge scores in chunks
(``relgate.judge.cache.score_rows``), so progress reports real rows done / total.

The contract other parts read (the rollout refuses a release without it):

- fact ``gate_result``: ``{"verdict": "pass" | "fail", "gate_result_sha256", "judge_sha256",
  "suite_sha256", ...}`` with a ``gate_pass`` / ``gate_fail`` receipt. Only outcome ``pass``
  is verdict pass; ``fail`` and ``insufficient`` block, and the release is archived (fact
  ``archived``) until a later gate passes or an override opens it. A cold start (no
  ``previous_release``) is never verdict pass (docs/design.md §3): it is recorded as
  ``gate_fail`` with the reason ``gate_records.COLD_START_REASON``, keeps its per-slice
  results (its slices' own outcome in ``result_outcome``) and rolls only through an override
  (then shadowed).
- fact ``gate_override``: ``{"gate_override_sha256", "rationale", "actor"}`` with a
  ``gate_override`` receipt; ``gate_override_sha256`` is SHA-256 over the canonical JSON of
  ``{release_sha256, gate_result_sha256, rationale, actor}``.

Data directory layout (``DATA_DIR/gates``): ``scores.db`` (judge score cache),
``answers/<answers sha256>.parquet`` (every release's answers with each answer's sha256,
content-addressed),
``calibrations/<judge>-<suite>-<settings>.json``, and per gate result
``<release sha>/<gate result sha>/`` with ``result.json``, ``calibration.json``,
``rows.parquet``, ``slices.parquet`` and ``report.html`` (``relgate.gate.report``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from relgate.access import acting_as
from relgate.answers import Answers
from relgate.app.gate_inputs import (
    DEFAULT_MAX_UPLOAD_BYTES,
    UPLOAD_PREFIX,
    AnswerArchive,
    UploadStore,
    resolve_server_path,
)
from relgate.app.gate_records import (
    GateRecord,
    gate_clearance,
    merge_policy,
    outcome_of,
    override_sha256,
    reason_of,
    sample_set_sha256,
    verdict_of,
)
from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import (
    GateError,
    IntegrityError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from relgate.gate.calibration import Calibration, calibrate
from relgate.gate.report import load_scores, write_report
from relgate.gate.result import GateResult, decide
from relgate.gate.run import score_release
from relgate.gate.sources import (
    AnswerChoice,
    JudgeChoice,
    JudgePool,
    ResolvedSuite,
    SuiteResolver,
    release_answers,
    reusable_answers,
)
from relgate.gate.verdict import GateScores
from relgate.judge.base import Judge
from relgate.judge.cache import ScoreCache
from relgate.manifest import Dataset, GatePolicy
from relgate.receipts.model import Receipt
from relgate.store import Store, StoredRelease
from relgate.suite import Suite

__all__ = [
    "GateOptions",
    "GateRecord",
    "GateRequest",
    "GateRunner",
    "gate_clearance",
    "override_sha256",
]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GateOptions:
    """Server settings of the gate.

    ``suites_dir`` resolves relative dataset refs; ``data_root`` is where recorded-outputs
    paths named by a request may lie (``relgate.app.gate_inputs``; besides uploads and the
    package's shipped files); ``max_upload_bytes`` caps an upload; ``judge`` is the
    default judge when a request names none; ``judge_factory`` replaces ``make_judge`` (tests
    inject a loaded or a fake judge); ``score_cache`` defaults to ``DATA_DIR/gates/scores.db``.
    """

    suites_dir: Path | None = None
    data_root: Path | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    judge: JudgeChoice = field(default_factory=JudgeChoice)
    judge_factory: Callable[[JudgeChoice], Judge] | None = None
    score_cache: Path | None = None
    #: With the release's endpoint as the answer source, take the previous release's answer to
    #: a request that is byte for byte the one it sent to the same attested weights
    #: (``relgate.gate.sources.reusable_answers``) instead of asking the model again.
    reuse_answers: bool = True
    #: Gate runs in the store (``relgate.app.gate_runs``): how often a server beats for the
    #: runs it works on, and after how long without a beat the leader resumes a run.
    run_heartbeat_s: float = 1.0
    run_stale_s: float = 10.0


@dataclass(frozen=True)
class GateRequest:
    """One RunGate call, decoded."""

    release_sha: str
    tenant: str
    actor: str
    answers: AnswerChoice | None = None
    judge: JudgeChoice | None = None
    suite_ref: str | None = None
    reuse_scores: bool = False


class GateRunner:
    """Runs gates against the store (thread-safe; one gate run at a time, since runs are
    CPU-bound and share the judges)."""

    def __init__(self, store: Store, options: GateOptions | None = None) -> None:
        self.store = store
        self.options = opts = options or GateOptions()
        self.root = store.data_dir / "gates"
        self.suites = SuiteResolver(opts.suites_dir)
        self.uploads = UploadStore(self.root / "uploads", opts.max_upload_bytes)
        self.answers = AnswerArchive(self.root / "answers")
        self.judges = JudgePool(opts.judge_factory)
        self._cache: ScoreCache | None = None
        self._run_lock = threading.Lock()

    # ---- helpers ----------------------------------------------------------------------------

    def _score_cache(self) -> ScoreCache:
        if self._cache is None:
            path = self.options.score_cache or self.root / "scores.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._cache = ScoreCache(path)
        return self._cache

    def cache_counts(self) -> tuple[int, int]:
        """The score cache's (hits, misses) so far: rows served from it, pairs judged."""
        cache = self._score_cache()
        return cache.hits, cache.misses

    def close(self) -> None:
        """Close the score cache."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def _release(self, release_sha: str, tenant: str) -> StoredRelease:
        # Another tenant's release is absent, not forbidden: existence is data.
        return self.store.get_release(release_sha, tenant=tenant)

    def _latest_fact(self, release_sha: str, tenant: str) -> dict[str, Any] | None:
        facts = self.store.facts(release_sha, "gate_result", tenant=tenant)
        return facts[-1].payload if facts else None

    def _calibration(
        self, resolved: ResolvedSuite, judge: Judge, policy: GatePolicy, progress: Progress
    ) -> Calibration:
        settings = sha256_hex(
            canonical_json(
                {"n": policy.n_resamples, "confidence": policy.confidence, "seed": policy.seed}
            )
        )[:16]
        path = (
            self.root
            / "calibrations"
            / f"{judge.judge_sha256}-{resolved.suite.sha256}-{settings}.json"
        )
        if path.is_file():
            cal = Calibration.read(path)
            if cal.judge_sha256 == judge.judge_sha256 and cal.suite_sha256 == resolved.suite.sha256:
                progress("calibration", 1, 1)
                return cal
        # Rows judged so far (the cached ones at once, then chunk by chunk), then the
        # bootstrap; the stage ends after it.
        rows = [0, resolved.suite.n_rows]

        def judged(done: int, total: int) -> None:
            rows[:] = [done, total]
            progress("calibration", min(done, total - 1) if total else 0, total)

        cal = calibrate(
            resolved.suite,
            judge,
            answers=dict(resolved.good_answers) if resolved.good_answers is not None else None,
            cache=self._score_cache(),
            n_resamples=policy.n_resamples,
            confidence=policy.confidence,
            seed=policy.seed,
            progress=judged,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        cal.write(tmp)
        tmp.replace(path)
        progress("calibration", rows[1], rows[1])
        return cal

    # ---- run --------------------------------------------------------------------------------

    def run(
        self,
        request: GateRequest,
        progress: Progress | None = None,
        *,
        stored_answers: str | None = None,
        on_answers: Callable[[str], None] | None = None,
    ) -> GateRecord:
        """Run the gate and record its decision (see the module docstring).

        ``stored_answers`` (a resumed run): the sha256 of the release's answers stored by an
        earlier attempt, read instead of asking the request's source again; ``on_answers`` is
        told the sha256 once the answers are stored."""
        report: Progress = progress or (lambda stage, done, total: None)
        stored = self._release(request.release_sha, request.tenant)
        # The policy that decides is the manifest's (hashed): never one a request brings.
        policy = stored.manifest.gate_policy
        with self._run_lock, acting_as(stored.tenant):
            if request.reuse_scores:
                return self._reapply(stored, policy, request, report)
            answers = (stored_answers, on_answers or (lambda sha: None))
            return self._run_fresh(stored, policy, request, report, answers)

    def _suite(self, dataset: Dataset, ref: str | None, tenant: str) -> ResolvedSuite:
        if ref is not None and ref.startswith(UPLOAD_PREFIX):
            path = self.uploads.path(ref, tenant)
            return SuiteResolver(path.parent).resolve(dataset, path.name)
        return self.suites.resolve(dataset, ref)

    def _readable(self, choice: AnswerChoice, tenant: str) -> AnswerChoice:
        """A recorded-outputs choice pointed at a file the server may read: an upload of the
        tenant, or a path under --data-root or the shipped data."""
        if choice.kind != "recorded":
            return choice
        if choice.value.startswith(UPLOAD_PREFIX):
            path = self.uploads.path(choice.value, tenant)
        else:
            path = resolve_server_path(choice.value, self.options.data_root, "answers path")
        return AnswerChoice("recorded", str(path))

    def _run_fresh(
        self,
        stored: StoredRelease,
        policy: GatePolicy,
        request: GateRequest,
        report: Progress,
        answers: tuple[str | None, Callable[[str], None]],
    ) -> GateRecord:
        manifest = stored.manifest
        if request.answers is None:
            raise InvalidInputError(
                "answers: name a source (recorded outputs file, the release endpoint, "
                "a vLLM or transformers model)"
            )
        resolved = self._suite(manifest.dataset, request.suite_ref, stored.tenant)
        suite = resolved.suite
        report("answers", 0, len(suite.item_ids))
        # The previous release's answers first: a gate that cannot compare fails before it
        # asks a model anything, and its endpoint answers may be this release's too.
        previous, reuse = None, {}
        prev_sha = manifest.previous_release
        if prev_sha is not None:
            prev_fact = self._latest_fact(prev_sha, stored.tenant)
            if prev_fact is None or not prev_fact.get("candidate_answers_sha256"):
                raise GateError(
                    f"previous release {prev_sha} has no gate run with stored answers; "
                    "gate it first (the comparison is paired by item)"
                )
            previous = self.answers.get(prev_fact["candidate_answers_sha256"], prev_sha)
            if (
                self.options.reuse_answers
                and request.answers.kind == "endpoint"
                and prev_fact.get("answers_source") == "endpoint"
                and prev_fact.get("suite_sha256") == suite.sha256
            ):
                prev_manifest = self._release(prev_sha, stored.tenant).manifest
                reuse = reusable_answers(manifest, prev_manifest, previous, suite)
        stored_sha, on_answers = answers
        if stored_sha is not None:
            candidate = self.answers.get(stored_sha, stored.sha256)
            candidate.require(suite.item_ids)
        else:
            candidate = self._collect(request.answers, stored, suite, reuse)
            self.answers.put(candidate)
            on_answers(candidate.sha256)
        report("answers", len(suite.item_ids), len(suite.item_ids))
        judge = self.judges.get(request.judge or self.options.judge)
        calibration = self._calibration(resolved, judge, policy, report)
        scores = score_release(
            suite,
            judge,
            candidate,
            previous,
            cache=self._score_cache(),
            progress=lambda done, total: report("judge", done, total),
        )
        report("statistics", 0, len(suite.slices))
        result = decide(scores, calibration, policy)
        report("statistics", len(suite.slices), len(suite.slices))
        extra = {
            "sample_set_sha256": sample_set_sha256(scores, candidate),
            "suite_ref": manifest.dataset.ref,
            "suite_path": str(resolved.path),
            "reused_scores": False,
            "answers_source": request.answers.kind,
            "answers_reused": len(reuse),
        }
        return self._record(stored, result, extra, request, report)

    def _collect(
        self, source: AnswerChoice, stored: StoredRelease, suite: Suite, reuse: dict[str, str]
    ) -> Answers:
        choice = self._readable(source, stored.tenant)
        try:
            return release_answers(choice, stored.manifest, suite, None, reuse)
        except InvalidInputError as exc:
            if choice.kind == "recorded" and "cannot be read" in str(exc):
                # The reader's message may quote the file; say what it is, not what it holds.
                raise InvalidInputError(
                    f"answers {source.value!r}: not a readable answers file "
                    f"({Path(choice.value).suffix}: JSONL or parquet with item_id, answer)"
                ) from None
            raise

    def _reapply(
        self, stored: StoredRelease, policy: GatePolicy, request: GateRequest, report: Progress
    ) -> GateRecord:
        latest = self.latest(stored.sha256, stored.tenant)
        report("statistics", 0, 1)
        result = decide(*self._stored_scores(latest), policy)
        report("statistics", 1, 1)
        # The same answers, scored under another policy: where they came from carries over.
        kept = ("sample_set_sha256", "suite_ref", "suite_path", "answers_source", "answers_reused")
        extra = {k: latest.fact.get(k) for k in kept} | {
            "reused_scores": True,
            "reapplied_to": latest.gate_result_sha256,
        }
        return self._record(stored, result, extra, request, report)

    def _stored_scores(self, record: GateRecord) -> tuple[GateScores, Calibration]:
        return load_scores(record.report_html.parent)

    def _record(
        self,
        stored: StoredRelease,
        result: GateResult,
        extra: dict[str, Any],
        request: GateRequest,
        report: Progress,
    ) -> GateRecord:
        release_sha = stored.sha256
        manifest = stored.manifest
        result_sha = result.sha256
        out = self.root / release_sha / result_sha
        prev = manifest.previous_release
        title = f"release {stored.release_id}" + (
            f" vs rel_{prev[:12]}" if prev else " (cold start)"
        )
        paths = write_report(result, out, title)
        body = {**result.to_dict(), "sha256": result_sha}
        cold_start = manifest.previous_release is None
        verdict = verdict_of(result, cold_start)
        fact: dict[str, Any] = {
            "verdict": verdict,
            # A cold start never passes (docs/design.md §3): a pass of its slices is recorded
            # as outcome fail; their own outcome stays on record as ``result_outcome``.
            "outcome": outcome_of(result, cold_start),
            "result_outcome": result.outcome.value,
            "gate_result_sha256": result_sha,
            "judge_sha256": body["judge_sha256"],
            "suite_sha256": body["suite_sha256"],
            "calibration_sha256": body["calibration_sha256"],
            "candidate_answers_sha256": body["candidate_answers_sha256"],
            "previous_answers_sha256": body["previous_answers_sha256"],
            "previous_release": manifest.previous_release,
            "cold_start": cold_start,
            "policy": body["policy"],
            "failed_slices": body["failed_slices"],
            "unvouched_slices": body["unvouched_slices"],
            "report_dir": str(out.relative_to(self.store.data_dir)),
            "archived": verdict == "fail",
            **extra,
        }
        evidence = {
            **fact,
            "policy_source": "manifest",
            "aggregate": body["aggregate"],
            "slices": body["slices"],
        }
        facts: list[tuple[str, dict[str, Any]]] = [("gate_result", fact)]
        if verdict == "fail":
            facts.append(
                (
                    "archived",
                    {"gate_result_sha256": result_sha, "reason": reason_of(result, cold_start)},
                )
            )
        report("receipt", 0, 1)
        receipt = self.store.record_decision(
            tenant=stored.tenant,
            release_sha=release_sha,
            kind=f"gate_{verdict}",
            evidence=evidence,
            actor=request.actor,
            reason=reason_of(result, cold_start),
            facts=facts,
        )
        report("receipt", 1, 1)
        return GateRecord(
            release_sha=release_sha,
            body=body,
            fact=fact,
            report_html=paths["html"],
            receipt=receipt,
            calibration=result.calibration,
        )

    # ---- read -------------------------------------------------------------------------------

    def latest(
        self, release_sha: str, tenant: str, gate_result_sha256: str | None = None
    ) -> GateRecord:
        """The release's latest gate result, or the one ``gate_result_sha256`` names
        (``NotFoundError`` when there is none)."""
        stored = self._release(release_sha, tenant)
        facts = self.store.facts(stored.sha256, "gate_result", tenant=stored.tenant)
        if gate_result_sha256 is not None:
            facts = [f for f in facts if f.payload["gate_result_sha256"] == gate_result_sha256]
        if not facts:
            raise NotFoundError(f"release {stored.sha256} has no gate result; run the gate")
        last = facts[-1]
        out = self.store.data_dir / str(last.payload["report_dir"])
        try:
            body = json.loads((out / "result.json").read_text())
            calibration = Calibration.read(out / "calibration.json")
        except (OSError, ValueError) as exc:
            raise IntegrityError(
                f"the stored gate result of {stored.sha256} cannot be read: {exc}",
                path=str(out),
                rule="gate_result_unreadable",
            ) from exc
        if body.get("sha256") != last.payload["gate_result_sha256"]:
            raise IntegrityError(
                f"stored gate result of {stored.sha256} differs from the one recorded",
                path=str(out / "result.json"),
                rule="gate_result_sha256_mismatch",
                expected=str(last.payload["gate_result_sha256"]),
                actual=str(body.get("sha256")),
            )
        receipt = next(
            (
                r
                for r in self.store.list_receipts(tenant=stored.tenant, release_sha=stored.sha256)
                if r.receipt_sha256 == last.receipt_sha256
            ),
            None,
        )
        overrides = [
            f.payload
            for f in self.store.facts(stored.sha256, "gate_override", tenant=stored.tenant)
            if f.payload.get("gate_result_sha256") == last.payload["gate_result_sha256"]
        ]
        return GateRecord(
            release_sha=stored.sha256,
            body=body,
            fact=last.payload,
            report_html=out / "report.html",
            receipt=receipt,
            calibration=calibration,
            override=overrides[-1] if overrides else None,
        )

    def what_if(self, release_sha: str, overrides: Mapping[str, Any], tenant: str) -> GateRecord:
        """The latest result's stored per-row scores under another policy: no judge call,
        nothing recorded."""
        latest = self.latest(release_sha, tenant)
        base = GatePolicy.model_validate(latest.body["policy"])
        result = decide(*self._stored_scores(latest), merge_policy(base, overrides))
        body = {**result.to_dict(), "sha256": result.sha256}
        cold_start = bool(latest.fact.get("cold_start"))
        verdict = verdict_of(result, cold_start)
        fact = {
            **latest.fact,
            "verdict": verdict,
            "outcome": outcome_of(result, cold_start),
            "result_outcome": result.outcome.value,
        }
        return replace(latest, body=body, fact=fact, receipt=None, override=None, what_if=True)

    # ---- override ---------------------------------------------------------------------------

    def override(
        self,
        release_sha: str,
        *,
        rationale: str,
        actor: str,
        tenant: str,
        gate_result_sha: str | None = None,
    ) -> tuple[str, Receipt]:
        """Open a failed (or cold-start) gate with a written rationale."""
        rationale = rationale.strip()
        if not rationale:
            raise InvalidInputError("an override needs a written rationale (non-empty)")
        latest = self.latest(release_sha, tenant)
        if gate_result_sha and gate_result_sha != latest.gate_result_sha256:
            raise InvalidTransitionError(
                f"gate result {gate_result_sha} is not the release's latest "
                f"({latest.gate_result_sha256}); review the latest before overriding it"
            )
        if latest.fact.get("verdict") == "pass" and not latest.fact.get("cold_start"):
            raise InvalidTransitionError(
                f"release {latest.release_sha} passed its gate; there is nothing to override"
            )
        result_sha = latest.gate_result_sha256
        digest = override_sha256(latest.release_sha, result_sha, rationale, actor)
        fact = {
            "gate_override_sha256": digest,
            "rationale": rationale,
            "actor": actor,
            "gate_result_sha256": result_sha,
        }
        receipt = self.store.record_decision(
            tenant=tenant,
            release_sha=latest.release_sha,
            kind="gate_override",
            evidence={
                **fact,
                "overridden_verdict": latest.fact.get("verdict"),
                "overridden_outcome": latest.fact.get("outcome"),
                "failed_slices": latest.fact.get("failed_slices", []),
                "unvouched_slices": latest.fact.get("unvouched_slices", []),
                "cold_start": bool(latest.fact.get("cold_start")),
            },
            actor=actor,
            reason=f"gate override: {rationale}",
            facts=[("gate_override", fact)],
        )
        return digest, receipt
