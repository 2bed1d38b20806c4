"""Package data: the demo suite built from TruthfulQA and the recorded demo releases.

See ``README.md`` beside this file for what each file is, how it was built, and TruthfulQA's
attribution and licence (Apache-2.0).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from relgate.errors import NotFoundError

__all__ = [
    "DEMO_RELEASES",
    "demo_answers_path",
    "demo_calibration_answers_path",
    "demo_suite_path",
    "truthfulqa_source_path",
]

DEMO_RELEASES = ("v1", "v2")


def _path(name: str) -> Path:
    path = Path(str(resources.files("relgate.data").joinpath(name)))
    if not path.is_file():
        raise NotFoundError(f"package data file missing: {name}")
    return path


def demo_suite_path() -> Path:
    """The TruthfulQA demo suite (CSV, all 38 categories)."""
    return _path("truthfulqa_demo_suite.csv")


def demo_answers_path(release: str) -> Path:
    """Recorded answers of demo release ``v1`` or ``v2`` (JSONL keyed by item_id)."""
    if release not in DEMO_RELEASES:
        raise NotFoundError(f"no demo release {release!r}; one of {', '.join(DEMO_RELEASES)}")
    return _path(f"truthfulqa_demo_answers_{release}.jsonl")


def demo_calibration_answers_path() -> Path:
    """TruthfulQA's best answers for the demo items (held out of the suite's references): the
    human-graded good answers the demo calibrates the judge with."""
    return _path("truthfulqa_demo_best_answers.jsonl")


def truthfulqa_source_path() -> Path:
    """TruthfulQA's own ``TruthfulQA.csv`` (Apache-2.0, unchanged): what the demo suite is
    built from (``relgate.datasets.truthfulqa.build_truthfulqa_suite``)."""
    return _path("TruthfulQA.csv")
