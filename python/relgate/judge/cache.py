"""Score cache: a judge's verdict on (item, answer, reference) is computed once.

Keyed by ``(item_id, answer sha256, reference sha256, judge sha256)``, as docs/design.md §3 says,
in one SQLite table (a file, or ``:memory:``). The item is part of the key because an LLM judge
may be shown the question; a different judge or a changed text is a different key, so a stale
score can never be served.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from relgate.canonical import text_sha256
from relgate.errors import InvalidInputError
from relgate.judge.base import Judge, check_scores

__all__ = ["ScoreCache", "score_rows"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_scores (
    item_id TEXT NOT NULL,
    answer_sha256 TEXT NOT NULL,
    reference_sha256 TEXT NOT NULL,
    judge_sha256 TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (item_id, answer_sha256, reference_sha256, judge_sha256)
) WITHOUT ROWID
"""

Key = tuple[str, str, str, str]


class ScoreCache:
    """SQLite-backed score cache, safe to share between threads."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[Key]) -> dict[Key, float]:
        """The cached scores among ``keys``."""
        found: dict[Key, float] = {}
        with self._lock:
            # Batched lookups keep the statement under SQLite's variable limit.
            for start in range(0, len(keys), 200):
                chunk = keys[start : start + 200]
                clause = " OR ".join(
                    "(item_id=? AND answer_sha256=? AND reference_sha256=? AND judge_sha256=?)"
                    for _ in chunk
                )
                params = [v for key in chunk for v in key]
                for row in self._conn.execute(
                    "SELECT item_id, answer_sha256, reference_sha256, judge_sha256, score "
                    f"FROM judge_scores WHERE {clause}",
                    params,
                ):
                    found[(row[0], row[1], row[2], row[3])] = float(row[4])
        return found

    def put_many(self, items: Sequence[tuple[Key, float]]) -> None:
        """Store scores (a key already present keeps its first score)."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR IGNORE INTO judge_scores VALUES (?, ?, ?, ?, ?)",
                [(*key, score) for key, score in items],
            )
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM judge_scores").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()


def score_rows(
    judge: Judge,
    item_ids: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
    cache: ScoreCache | None = None,
) -> npt.NDArray[np.float64]:
    """Score each row ``(item_ids[i], answers[i], references[i])``, through ``cache`` if given.

    Only the rows missing from the cache reach the judge, each distinct pair once.
    """
    if not len(item_ids) == len(answers) == len(references):
        raise InvalidInputError(
            f"score_rows: {len(item_ids)} items, {len(answers)} answers, "
            f"{len(references)} references; they must pair up"
        )
    jsha = judge.judge_sha256
    keys: list[Key] = [
        (item, text_sha256(a), text_sha256(r), jsha)
        for item, a, r in zip(item_ids, answers, references, strict=True)
    ]
    known = cache.get_many(keys) if cache is not None else {}
    todo: dict[Key, int] = {}
    for i, key in enumerate(keys):
        if key not in known and key not in todo:
            todo[key] = i
    if todo:
        idx = list(todo.values())
        fresh = check_scores(
            np.asarray(
                judge.score([answers[i] for i in idx], [references[i] for i in idx]),
                dtype=np.float64,
            ),
            "cached",
        )
        new = list(zip(todo.keys(), (float(s) for s in fresh), strict=True))
        known.update(new)
        if cache is not None:
            cache.put_many(new)
    if cache is not None:
        cache.hits += len(keys) - len(todo)
        cache.misses += len(todo)
    return np.fromiter((known[k] for k in keys), dtype=np.float64, count=len(keys))
