"""Where a server-side gate run gets its inputs: the suite a manifest pins, the release's
answers, and the judge.

Suites. A manifest's ``dataset`` is ``{ref, sha256}``. ``ref`` names either a suite shipped in
the package (``truthfulqa-demo``) or a file (CSV, JSONL, parquet) under the server's suites
directory; a path that leaves that directory is refused. The loaded suite's sha256 must equal
``dataset.sha256`` (``IntegrityError``, rule ``suite_sha256_mismatch``, otherwise). A suite
file may have human-graded good answers beside it for calibration, ``<stem>.good_answers.jsonl``
(or ``.parquet``), as the shipped suite has TruthfulQA's best answers; without them the
calibration leaves one reference out per item (``relgate.gate.calibration``).

Answers. A recorded-outputs file readable by the server, the release's own OpenAI-compatible
endpoint with its prompt template applied, an in-process vLLM engine or a local transformers
model.

Judges. ``JudgeChoice`` names a backend and its options; the server keeps one instance per
choice (models load once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relgate.answers import (
    Answers,
    endpoint_request,
    from_endpoint,
    from_transformers,
    from_vllm,
    load_answers,
)
from relgate.canonical import canonical_json
from relgate.errors import IntegrityError, InvalidInputError, NotFoundError
from relgate.judge import make_judge
from relgate.judge.base import Judge
from relgate.manifest import Dataset, ReleaseManifest
from relgate.suite import Suite, load_suite

__all__ = [
    "SHIPPED_SUITES",
    "AnswerChoice",
    "JudgeChoice",
    "JudgePool",
    "ResolvedSuite",
    "SuiteResolver",
    "release_answers",
    "reusable_answers",
]

_SUITE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


def _shipped_demo() -> tuple[Path, Path]:
    from relgate.data import demo_calibration_answers_path, demo_suite_path

    return demo_suite_path(), demo_calibration_answers_path()


#: Suites shipped in the package: name -> (suite file, good answers file).
SHIPPED_SUITES: dict[str, Callable[[], tuple[Path, Path | None]]] = {
    "truthfulqa-demo": _shipped_demo,
}


@dataclass(frozen=True)
class ResolvedSuite:
    """A suite that matched its manifest's pinned sha256, and its calibration answers."""

    suite: Suite
    path: Path
    good_answers: Answers | None


class SuiteResolver:
    """Resolves ``dataset`` refs to suites; loaded suites are kept while their file is
    unchanged (loading hashes every row)."""

    def __init__(self, suites_dir: Path | None) -> None:
        self.suites_dir = suites_dir.resolve() if suites_dir is not None else None
        self._loaded: dict[Path, tuple[tuple[int, int], ResolvedSuite]] = {}
        self._lock = threading.Lock()

    def locate(self, ref: str) -> tuple[Path, Path | None]:
        """(suite file, good answers file or None) for a ref; ``NotFoundError`` naming what
        was tried."""
        ref = ref.strip()
        if ref in SHIPPED_SUITES:
            return SHIPPED_SUITES[ref]()
        tried = [f"a shipped suite ({', '.join(sorted(SHIPPED_SUITES))})"]
        if self.suites_dir is not None:
            path = (self.suites_dir / ref).resolve()
            if not path.is_relative_to(self.suites_dir):
                raise InvalidInputError(
                    f"dataset ref {ref!r} leaves the server's suites directory {self.suites_dir}"
                )
            if path.is_file():
                return path, _good_answers_beside(path)
            tried.append(f"a file {path}")
        else:
            tried.append("a file under --suites-dir (the server has none)")
        raise NotFoundError(f"suite {ref!r} not found: it is neither {' nor '.join(tried)}")

    def resolve(self, dataset: Dataset, ref: str | None = None) -> ResolvedSuite:
        """The suite of ``dataset`` (or of ``ref`` when given), checked against
        ``dataset.sha256``."""
        path, good = self.locate(ref or dataset.ref)
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._loaded.get(path)
        if cached is not None and cached[0] == stamp:
            resolved = cached[1]
        else:
            suite = load_suite(path)
            answers = load_answers(good) if good is not None else None
            resolved = ResolvedSuite(suite=suite, path=path, good_answers=answers)
            with self._lock:
                self._loaded[path] = (stamp, resolved)
        if resolved.suite.sha256 != dataset.sha256:
            raise IntegrityError(
                f"suite {path} hashes to {resolved.suite.sha256}, but the release's "
                f"dataset.sha256 is {dataset.sha256}: the gate will not run on another suite",
                path=str(path),
                rule="suite_sha256_mismatch",
                expected=dataset.sha256,
                actual=resolved.suite.sha256,
            )
        return resolved


def _good_answers_beside(path: Path) -> Path | None:
    for suffix in (".jsonl", ".parquet"):
        candidate = path.with_name(f"{path.stem}.good_answers{suffix}")
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class JudgeChoice:
    """A judge backend and its constructor options (``relgate.judge.make_judge``)."""

    backend: str = "embedding"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity of the choice (one judge instance per key)."""
        return json.dumps({"backend": self.backend, "options": dict(self.options)}, sort_keys=True)


class JudgePool:
    """One judge per choice, built on first use by ``factory`` (default ``make_judge``)."""

    def __init__(self, factory: Callable[[JudgeChoice], Judge] | None = None) -> None:
        self._factory = factory or (lambda c: make_judge(c.backend, **dict(c.options)))
        self._judges: dict[str, Judge] = {}
        self._lock = threading.Lock()

    def get(self, choice: JudgeChoice) -> Judge:
        """The judge for ``choice``."""
        with self._lock:
            judge = self._judges.get(choice.key)
            if judge is None:
                judge = self._factory(choice)
                self._judges[choice.key] = judge
            return judge


@dataclass(frozen=True)
class AnswerChoice:
    """Where a release's answers come from: a recorded-outputs file, the release's endpoint,
    an in-process vLLM engine or a local transformers model (``value``: path or model)."""

    kind: Literal["recorded", "endpoint", "vllm", "transformers"]
    value: str = ""


def _rendered(manifest: ReleaseManifest, suite: Suite) -> dict[str, Any]:
    # Each item rendered by the one function the gateway renders live traffic with, for the
    # item's slice: the class that slice belongs to applies its template and settings.
    slice_of = suite.slice_of()
    return {item: manifest.render_prompt(p, slice_of[item]) for item, p in suite.prompts().items()}


def _weights_identity(manifest: ReleaseManifest) -> bytes | None:
    """The model as an endpoint request reaches it: the model section and the registered
    weights root. None for weights nobody attested (an API model can change behind its name)."""
    root = (manifest.weights_attestation or {}).get("root")
    if not manifest.open_weights or not root:
        return None
    return canonical_json({"model": manifest.model.model_dump(mode="json"), "root": root})


def reusable_answers(
    manifest: ReleaseManifest, previous: ReleaseManifest, answers: Mapping[str, str], suite: Suite
) -> dict[str, str]:
    """The previous release's endpoint ``answers`` (to this same ``suite``) that are also this
    release's: the items whose request is byte for byte the one the previous release sent
    (messages, settings, per-request seed) to the same endpoint and the same attested weights.
    The release changed nothing about such a request: asking again would spend the model's time
    on a noisy estimate of a change that is zero (docs/design.md §3, "Answers")."""
    mine = _weights_identity(manifest)
    if mine is None or mine != _weights_identity(previous):
        return {}
    model, prev_model = manifest.served_model, previous.served_model
    ours, theirs = _rendered(manifest, suite), _rendered(previous, suite)
    return {
        item: answers[item]
        for item, rendered in ours.items()
        if item in answers
        and endpoint_request(rendered, model) == endpoint_request(theirs[item], prev_model)
    }


def release_answers(
    choice: AnswerChoice,
    manifest: ReleaseManifest,
    suite: Suite,
    base_dir: Path | None,
    reuse: Mapping[str, str] | None = None,
) -> Answers:
    """The release's answers to every suite prompt from ``choice``; with the endpoint,
    ``reuse`` (from :func:`reusable_answers`) is not asked again."""
    if choice.kind == "recorded":
        if not choice.value.strip():
            raise InvalidInputError("answers: recorded_outputs_path is empty")
        path = Path(choice.value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        answers = load_answers(path)
    else:
        rendered = _rendered(manifest, suite)
        if choice.kind == "endpoint":
            reused = dict(reuse or {})
            ask = {i: r for i, r in rendered.items() if i not in reused}
            asked = (
                from_endpoint(ask, base_url=manifest.model.endpoint, model=manifest.served_model)
                if ask
                else Answers({})
            )
            source = f"endpoint {manifest.model.endpoint} model {manifest.served_model}"
            if reused:
                source += f" ({len(reused)} reused from the previous release's gate)"
            answers = Answers({**asked.texts, **reused}, source=source)
        else:
            # In-process engines take one setting for all items: the release's own.
            make = from_vllm if choice.kind == "vllm" else from_transformers
            generation = manifest.generation.fields() if manifest.generation else None
            answers = make(
                {i: r.messages for i, r in rendered.items()},
                model=choice.value or manifest.served_model,
                generation=generation,
            )
    answers.require(suite.item_ids)
    return answers
