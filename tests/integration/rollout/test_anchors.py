"""The replay's negative anchors come from the release's own suite (resolved and pinned like
the gate's), falling back to the hedges alone when the suite cannot be resolved."""

from __future__ import annotations

from types import SimpleNamespace

from relgate.app.probes import HEDGES, dataset_anchors
from relgate.data import demo_suite_path
from relgate.gate.sources import SuiteResolver
from relgate.suite import load_suite


def test_anchors_from_the_pinned_suite_else_hedges() -> None:
    sha = load_suite(demo_suite_path()).sha256
    good = SimpleNamespace(dataset=SimpleNamespace(ref="truthfulqa-demo", sha256=sha))
    bad = SimpleNamespace(dataset=SimpleNamespace(ref="truthfulqa-demo", sha256="ab" * 32))
    manifests = {"good": good, "bad": bad}
    anchors = dataset_anchors(manifests.__getitem__, SuiteResolver(None))
    law = anchors("good")["Law"]
    assert set(HEDGES) <= set(law) and len(law) > len(HEDGES)
    assert anchors("good") == anchors("good")  # a stable choice
    assert anchors("bad") == {"": list(HEDGES)}  # another suite than pinned: hedges only
