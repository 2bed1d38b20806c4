"""Score cache: a judge's verdict on (item, answer, reference) is computed once.

Keyed by ``(item_id, answer sha256, reference sha256, judge sha256)``, as docs/design.md §3 says,
in one SQLite table (a file, or ``:memory:``). The item is part of the key because an LLM judge
may be shown the question; a different judge or a changed text is a different key, so a stale
score can never be served.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from relgate.canonical import text_sha256
from relgate.errors import InvalidInputError
from relgate.judge.base import Judge, check_scores

__all__ = ["CHUNK_PAIRS", "RowProgress", "ScoreCache", "score_rows"]

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


#: Distinct pairs one judge call scores (and the cache stores) at a time: bounded work per
#: call, scores that survive a crash chunk by chunk, and progress a caller can show.
CHUNK_PAIRS = 256

#: ``(rows done, rows total)``: rows whose score is known (cached or freshly judged).
RowProgress = Callable[[int, int], None]


def score_rows(
    judge: Judge,
    item_ids: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
    cache: ScoreCache | None = None,
    *,
    progress: RowProgress | None = None,
    chunk: int = CHUNK_PAIRS,
) -> npt.NDArray[np.float64]:
    """Score each row ``(item_ids[i], answers[i], references[i])``, through ``cache`` if given.

    Only the rows missing from the cache reach the judge, each distinct pair once, ``chunk``
    distinct pairs per judge call; each chunk's scores are stored before the next call, so a
    crash (or a judge error) loses at most the chunk in flight, and a rerun judges only the
    rest. ``progress(done, total)`` counts rows: once for the cached ones, then after each
    chunk.
    """
    if not len(item_ids) == len(answers) == len(references):
        raise InvalidInputError(
            f"score_rows: {len(item_ids)} items, {len(answers)} answers, "
            f"{len(references)} references; they must pair up"
        )
    if chunk < 1:
        raise InvalidInputError(f"score_rows: chunk must be at least 1 pair, not {chunk}")
    jsha = judge.judge_sha256
    keys: list[Key] = [
        (item, text_sha256(a), text_sha256(r), jsha)
        for item, a, r in zip(item_ids, answers, references, strict=True)
    ]
    rows_of = Counter(keys)
    known = cache.get_many(keys) if cache is not None else {}
    todo: dict[Key, int] = {}
    for i, key in enumerate(keys):
        if key not in known and key not in todo:
            todo[key] = i
    if cache is not None:
        # Hits: rows that need no judge call of their own (cached, or a repeat of a pair).
        cache.hits += len(keys) - len(todo)
    done = len(keys) - sum(rows_of[k] for k in todo)
    if progress is not None:
        progress(done, len(keys))
    pending = list(todo.items())
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        fresh = check_scores(
            np.asarray(
                judge.score([answers[i] for _, i in part], [references[i] for _, i in part]),
                dtype=np.float64,
            ),
            "cached",
        )
        new = [(key, float(s)) for (key, _), s in zip(part, fresh, strict=True)]
        known.update(new)
        if cache is not None:
            cache.put_many(new)
            cache.misses += len(new)
        done += sum(rows_of[key] for key, _ in new)
        if progress is not None:
            progress(done, len(keys))
    return np.fromiter((known[k] for k in keys), dtype=np.float64, count=len(keys))
