"""The Grafana dashboard (docs/grafana/relgate.json) is valid JSON whose every query names only
metrics the server exports (as documented in docs/metrics.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_panel_queries_documented_metrics() -> None:
    dash = json.loads((DOCS / "grafana" / "relgate.json").read_text())
    documented = set(re.findall(r"^\| `(relgate_[a-z0-9_]+)`", (DOCS / "metrics.md").read_text(),
                                re.MULTILINE))  # fmt: skip
    assert len(documented) >= 15
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in dash["annotations"]["list"]]
    used: set[str] = set()
    for expr in exprs:
        for name in re.findall(r"relgate_[a-z0-9_]+", expr):
            used.add(re.sub(r"_(bucket|count|sum)$", "", name))
    assert used <= documented, used - documented
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    assert used >= {"relgate_gateway_requests_total", "relgate_rollout_phase",
                    "relgate_rollout_candidate_weight_ratio", "relgate_judge_rows_scored_total",
                    "relgate_anchor_lag_seconds", "relgate_gate_verdicts_total"}  # fmt: skip
