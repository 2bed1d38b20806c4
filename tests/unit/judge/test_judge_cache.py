"""The score cache: keyed by (item, answer sha, reference sha, judge sha); misses only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from relgate.errors import InvalidInputError, JudgeError
from relgate.judge import ScoreCache, judge_sha256, score_rows
from relgate.judge.base import check_scores
from relgate.testing.judges import WordOverlapJudge

ITEMS = ["a", "a", "b"]
ANSWERS = ["the cat sat", "the cat sat", "dogs bark"]
REFS = ["the cat sat down", "no cat", "dogs bark loudly"]


def test_second_pass_is_served_from_the_cache(overlap_judge: WordOverlapJudge) -> None:
    cache = ScoreCache()
    first = score_rows(overlap_judge, ITEMS, ANSWERS, REFS, cache)
    assert overlap_judge.pairs_scored == 3
    again = score_rows(overlap_judge, ITEMS, ANSWERS, REFS, cache)
    assert overlap_judge.pairs_scored == 3
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, [0.75, 1 / 4, 2 / 3])
    assert (cache.hits, cache.misses, len(cache)) == (3, 3, 3)


def test_key_includes_judge_item_answer_and_reference(overlap_judge: WordOverlapJudge) -> None:
    cache = ScoreCache()
    score_rows(overlap_judge, ITEMS, ANSWERS, REFS, cache)
    other = WordOverlapJudge(sha="1" * 64)
    score_rows(other, ITEMS, ANSWERS, REFS, cache)
    assert other.pairs_scored == 3
    score_rows(overlap_judge, ["c", "a", "b"], ANSWERS, REFS, cache)  # new item for row 0
    score_rows(overlap_judge, ITEMS, ["the cat sat!", *ANSWERS[1:]], REFS, cache)
    assert overlap_judge.pairs_scored == 3 + 1 + 1


def test_duplicate_rows_reach_the_judge_once(overlap_judge: WordOverlapJudge) -> None:
    out = score_rows(overlap_judge, ["a"] * 4, ["x y"] * 4, ["x"] * 4)
    assert overlap_judge.pairs_scored == 1
    np.testing.assert_allclose(out, [0.5] * 4)


def test_cache_file_persists(tmp_path: Path, overlap_judge: WordOverlapJudge) -> None:
    path = tmp_path / "scores.sqlite"
    cache = ScoreCache(path)
    score_rows(overlap_judge, ITEMS, ANSWERS, REFS, cache)
    cache.close()
    fresh = WordOverlapJudge()
    score_rows(fresh, ITEMS, ANSWERS, REFS, ScoreCache(path))
    assert fresh.pairs_scored == 0


def test_mismatched_lengths_and_bad_scores_are_errors(overlap_judge: WordOverlapJudge) -> None:
    with pytest.raises(InvalidInputError, match="must pair up"):
        score_rows(overlap_judge, ["a"], ["x", "y"], ["z"])
    with pytest.raises(JudgeError, match="returned nan for pair 1"):
        check_scores(np.array([0.5, np.nan]), "broken")
    with pytest.raises(JudgeError, match=r"returned 1\.5"):
        check_scores(np.array([1.5]), "broken")


def test_judge_sha_covers_every_part() -> None:
    base = ("embedding", "m", "sha256:w", "p", {"k": 1})
    sha, description = judge_sha256(*base)
    assert description["weights"] == "sha256:w"
    for i, changed in enumerate(("llm", "m2", "sha256:v", "p2", {"k": 2})):
        args = list(base)
        args[i] = changed
        assert judge_sha256(*args)[0] != sha  # type: ignore[arg-type]


def _rows(n: int) -> tuple[list[str], list[str], list[str]]:
    items = [f"i{k // 2}" for k in range(n)]  # two rows per item
    answers = [f"answer {k} words" for k in range(n)]
    refs = [f"reference {k % 7} words" for k in range(n)]
    return items, answers, refs


def test_progress_is_monotone_per_chunk_and_counts_cached_rows() -> None:
    items, answers, refs = _rows(25)
    cache = ScoreCache()
    judge = WordOverlapJudge()
    score_rows(judge, items[:7], answers[:7], refs[:7], cache)  # 7 rows known beforehand
    seen: list[tuple[int, int]] = []
    out = score_rows(
        judge, items, answers, refs, cache, chunk=5, progress=lambda *p: seen.append(p)
    )
    # Cached rows first, then one event per chunk of 5 fresh pairs, ending at the total.
    assert seen == [(7, 25), (12, 25), (17, 25), (22, 25), (25, 25)]
    np.testing.assert_array_equal(out, score_rows(WordOverlapJudge(), items, answers, refs))


def test_a_crash_keeps_the_chunks_scored_and_a_rerun_judges_only_the_rest(tmp_path: Path) -> None:
    items, answers, refs = _rows(20)
    path = tmp_path / "scores.db"
    failing = WordOverlapJudge(fail_at=3)
    seen: list[tuple[int, int]] = []
    with pytest.raises(JudgeError, match="lost mid-run"):
        score_rows(failing, items, answers, refs, ScoreCache(path), chunk=6,
                   progress=lambda *p: seen.append(p))  # fmt: skip
    assert seen == [(0, 20), (6, 20), (12, 20)]
    assert len(ScoreCache(path)) == 12  # chunks 1 and 2 survived the error
    rerun = WordOverlapJudge()
    out = score_rows(rerun, items, answers, refs, ScoreCache(path), chunk=6)
    assert rerun.pairs_scored == 8
    np.testing.assert_array_equal(out, score_rows(WordOverlapJudge(), items, answers, refs))


def test_chunk_must_be_positive(overlap_judge: WordOverlapJudge) -> None:
    with pytest.raises(InvalidInputError, match="chunk must be at least 1"):
        score_rows(overlap_judge, ITEMS, ANSWERS, REFS, chunk=0)
