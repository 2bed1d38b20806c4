"""Judge a suite against a release's answers in shards: the unit of work both in process and
as Ray tasks (``relgate judge batch [--ray]``), so the two give the same scores.

The report has one row per suite row: ``item_id, slice, reference_sha256, answer_sha256,
human_grade, score`` (JSON list or parquet), plus the judge's sha256 beside it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate.canonical import text_sha256
from relgate.errors import InvalidInputError
from relgate.judge import make_judge
from relgate.judge.base import Judge

__all__ = ["BatchRows", "Shard", "batch_rows", "judge_shard", "run_batch", "shards", "write_batch"]

_judges: dict[str, Judge] = {}
_judges_lock = threading.Lock()


@dataclass(frozen=True)
class BatchRows:
    """The pairs to judge and what the report says about each."""

    item_ids: list[str]
    slices: list[str]
    grades: list[float]
    answers: list[str]
    references: list[str]


@dataclass(frozen=True)
class Shard:
    """Rows ``start:stop`` of a batch."""

    index: int
    start: int
    stop: int


def batch_rows(suite_path: Path, answers_path: Path) -> BatchRows:
    """Pair every suite row with the release's answer to its item."""
    from relgate.answers import load_answers
    from relgate.suite import load_suite

    suite = load_suite(suite_path)
    answers = load_answers(answers_path)
    answers.require(suite.item_ids)
    items = [str(i) for i in suite.frame["item_id"].to_list()]
    return BatchRows(
        item_ids=items,
        slices=[str(s) for s in suite.frame["slice"].to_list()],
        grades=[float(g) for g in suite.frame["human_grade"].to_list()],
        answers=[answers[i] for i in items],
        references=[str(r) for r in suite.frame["reference"].to_list()],
    )


def shards(n: int, shard_rows: int) -> list[Shard]:
    """Cut ``n`` rows into shards of at most ``shard_rows``."""
    if shard_rows < 1:
        raise InvalidInputError(f"shard size must be >= 1, got {shard_rows}")
    return [
        Shard(k, start, min(n, start + shard_rows))
        for k, start in enumerate(range(0, n, shard_rows))
    ]


def judge_shard(
    backend: str, options: Mapping[str, Any], answers: Sequence[str], references: Sequence[str]
) -> tuple[str, list[float]]:
    """Score one shard: ``(judge_sha256, scores)``. The judge is built once per process
    (a Ray worker keeps its model loaded across the tasks it runs)."""
    key = json.dumps({"backend": backend, "options": dict(options)}, sort_keys=True)
    with _judges_lock:
        judge = _judges.get(key)
        if judge is None:
            judge = _judges[key] = make_judge(backend, **dict(options))
    return judge.judge_sha256, [float(x) for x in judge.score(answers, references)]


def run_batch(
    rows: BatchRows,
    backend: str,
    options: Mapping[str, Any],
    *,
    shard_rows: int = 1024,
    on_shard: Callable[[Shard], None] | None = None,
) -> tuple[str, list[float]]:
    """Judge every row in process, shard by shard: ``(judge_sha256, scores)``."""
    scores: list[float] = []
    sha = make_judge(backend, **dict(options)).judge_sha256 if not rows.answers else ""
    for shard in shards(len(rows.answers), shard_rows):
        sha, part = judge_shard(
            backend,
            options,
            rows.answers[shard.start : shard.stop],
            rows.references[shard.start : shard.stop],
        )
        scores.extend(part)
        if on_shard is not None:
            on_shard(shard)
    return sha, scores


def write_batch(rows: BatchRows, judge_sha256: str, scores: Sequence[float], out: Path) -> None:
    """The report: JSON ``{judge_sha256, rows: [...]}`` or, for .parquet, a table with a
    ``judge_sha256`` column."""
    table = {
        "item_id": rows.item_ids,
        "slice": rows.slices,
        "reference_sha256": [text_sha256(r) for r in rows.references],
        "answer_sha256": [text_sha256(a) for a in rows.answers],
        "human_grade": rows.grades,
        "score": list(scores),
    }
    if out.suffix == ".parquet":
        import polars as pl

        frame = pl.DataFrame(table).with_columns(pl.lit(judge_sha256).alias("judge_sha256"))
        frame.write_parquet(out)
        return
    records = [
        dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)
    ]
    out.write_text(
        json.dumps({"judge_sha256": judge_sha256, "rows": records}, indent=1) + "\n",
        encoding="utf-8",
    )
