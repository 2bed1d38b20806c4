"""The noise-aware replay and the always-valid sequential test, on recorded real answers.

``data/replay_real.json`` is an excerpt of benches/real_model/data/answers (SmolLM2-135M on
llama.cpp, temperature 0.7): 30 Law and 30 Health items, each with v1's answers under seeds 1-4,
the few-shot-hedge release, the Law-stripping release, the Law stop-at-space release and the
reworded release (seed 2), plus the embedding judge's agreement of each answer with each v1
answer and each anchor (benches/real_model/paired_margins.py wrote it).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from relgate.errors import InvalidInputError
from relgate.rollout.monitors import QualityLedger, Verdict, evaluate_quality
from relgate.rollout.observe import MinuteQuality, ObserverState, SliceMinute, observe_minute
from relgate.rollout.replay import ReplayTrace, replay_quality
from relgate.rollout.sequential import SequentialState, fold, threshold_log
from relgate.rollout.spec import MonitorThresholds, ObserverSpec

DATA = json.loads((Path(__file__).parent / "data" / "replay_real.json").read_text())
SERVED: list[str] = DATA["served"]


def _lookup() -> dict[tuple[str, str], float]:
    table: dict[tuple[str, str], float] = {}
    for item in DATA["items"]:
        refs = [item["answers"][s] for s in SERVED] + DATA["anchors"][item["slice"]]
        for arm, text in item["answers"].items():
            for ref, a in zip(refs, item["agree"][arm], strict=True):
                table[(text, ref)] = a
    return table


AGREE = _lookup()


def judge(answers: Sequence[str], references: Sequence[str]) -> list[float]:
    """The embedding judge's recorded agreements (a pair it never scored is a test bug)."""
    return [AGREE[(a, r)] for a, r in zip(answers, references, strict=True)]


def replay(candidate: str, served: str, rerun: str | None, slices=("Law", "Health"), look: int = 0):
    items = [it for it in DATA["items"] if it["slice"] in slices]
    traces = {
        s: [
            ReplayTrace(f"{it['item_id']}/{look}", s, "q", it["answers"][served], float(k))
            for k, it in enumerate(items)
            if it["slice"] == s
        ]
        for s in slices
    }
    cand = {f"{it['item_id']}/{look}": it["answers"][candidate] for it in items}
    reruns = (
        None if rerun is None else {f"{it['item_id']}/{look}": it["answers"][rerun] for it in items}
    )
    return replay_quality(
        traces, cand, DATA["anchors"], judge, spearman=_spearman, stable_rerun=reruns
    )


def _spearman(x, y, offsets):
    from scipy.stats import spearmanr

    return np.array(
        [
            spearmanr(x[offsets[i] : offsets[i + 1]], y[offsets[i] : offsets[i + 1]])[0]
            for i in range(len(offsets) - 1)
        ]
    )


T = MonitorThresholds(min_replay_rows=20, replay_cap=50)


def test_served_ceiling_makes_an_identical_model_look_worse_and_the_rerun_does_not() -> None:
    # A/A: the candidate is v1 answering with another seed. Against the served text scored
    # against itself (agreement 1 with the good reference), the candidate looks worse.
    old = replay("v1__s3", "v1__s1", None)
    assert all(s.ceiling_source == "served" for s in old.slices)
    new = replay("v1__s3", "v1__s1", "v1__s2")
    assert all(s.ceiling_source == "rerun" for s in new.slices)
    for o, n in zip(old.slices, new.slices, strict=True):
        assert o.q < 0.95 and o.ceiling > n.ceiling, (o, n)
        assert 0.95 < n.q < 1.3, n


@pytest.mark.parametrize(
    ("cand", "served", "rerun"),
    [
        ("v1__s3", "v1__s1", "v1__s2"),
        ("v1__s2", "v1__s4", "v1__s3"),
        ("v1__s4", "v1__s2", "v1__s1"),
        ("reworded__s2", "v1__s1", "v1__s3"),
    ],
)
def test_a_a_and_reworded_pass(cand: str, served: str, rerun: str) -> None:
    v = evaluate_quality(replay(cand, served, rerun), T)
    assert v.verdict is Verdict.PASS, v.reason
    assert all(s["test"] == "paired e-process" for s in v.evidence["slices"])


def test_the_hedging_release_fails_and_the_law_only_break_fails_on_law_only() -> None:
    # The few-shot hedge damages every slice a little: 30 traces per slice never vouch for it.
    v = evaluate_quality(replay("fewshot_hedge__s2", "v1__s1", "v1__s3"), T)
    assert v.verdict is not Verdict.PASS, v.reason
    # The Law-only break: one look of 30 Law traces holds (not PASS), three looks (the same
    # items seen again as new traces, other served/rerun seeds) FAIL on Law alone.
    ledger = QualityLedger(margin=0.02)
    looks = [("v1__s1", "v1__s3"), ("v1__s4", "v1__s1"), ("v1__s3", "v1__s4")]
    for k, (served, rerun) in enumerate(looks):
        v = evaluate_quality(ledger.fold(replay("law_stop_space__s2", served, rerun, look=k)), T)
        if k == 0:
            assert v.verdict is Verdict.INCONCLUSIVE, v.reason
    assert v.verdict is Verdict.FAIL
    by = {s["slice"]: s["verdict"] for s in v.evidence["slices"]}
    assert by == {"Law": "FAIL", "Health": "PASS"}, v.evidence["slices"]


def test_ledger_counts_each_trace_once_and_accumulates_across_looks() -> None:
    ledger = QualityLedger(margin=0.02)
    r = replay("v1__s3", "v1__s1", "v1__s2", slices=("Law",))
    first = ledger.fold(r)
    again = ledger.fold(r)  # the same traces replayed at the next look add nothing
    assert first.slices[0].sequential == again.slices[0].sequential
    assert first.slices[0].sequential is not None and first.slices[0].sequential.n == 30
    # The cumulative state survives a round trip through the stored reading.
    from relgate.rollout.monitors import QualityReading

    back = QualityReading.from_dict(json.loads(json.dumps(again.to_dict())))
    assert back.slices[0].sequential == again.slices[0].sequential
    assert evaluate_quality(back, T).verdict is Verdict.PASS


def test_a_judge_error_is_inconclusive_with_a_rerun() -> None:
    def broken(a, r):
        raise InvalidInputError("judge returned garbage")

    items = [it for it in DATA["items"] if it["slice"] == "Law"]
    traces = {"Law": [ReplayTrace(it["item_id"], "Law", "q", "x", 0.0) for it in items]}
    ids = {it["item_id"]: "y" for it in items}
    r = replay_quality(traces, ids, DATA["anchors"], broken, stable_rerun=ids)
    assert evaluate_quality(r, T).verdict is Verdict.INCONCLUSIVE


def test_type_i_error_over_unlimited_looks_is_bounded() -> None:
    # 400 null streams of 2,000 observations looked at after every single one: the share that
    # ever rejects at alpha 0.05 stays under alpha (Ville), and here well under it.
    rng = np.random.default_rng(7)
    rejected = 0
    for _ in range(400):
        d = np.clip(rng.normal(-0.02, 0.15, 2000), -2, 2)  # mean exactly at the margin
        state = fold(SequentialState(margin=0.02), d)
        rejected += state.rejected(0.05)
    assert rejected / 400 <= 0.05


def test_power_on_a_real_shift() -> None:
    rng = np.random.default_rng(1)
    state = SequentialState(margin=0.02)
    while state.n < 500 and not state.rejected(0.05):
        state = fold(state, [float(np.clip(rng.normal(-0.2, 0.15), -2, 2))])
    assert state.rejected(0.05) and state.n < 60, state


def test_bad_input_is_refused_and_loses_nothing() -> None:
    s = fold(SequentialState(), [0.1, -0.1])
    with pytest.raises(InvalidInputError, match="outside"):
        fold(s, [0.0, math.nan])
    with pytest.raises(InvalidInputError, match="outside"):
        fold(s, [3.0])
    with pytest.raises(InvalidInputError):
        SequentialState.from_dict({"margin": 0.05})
    with pytest.raises(InvalidInputError):
        threshold_log(0.0)
    assert s.n == 2


def _minutes(candidate: str, seed: int, n_minutes: int, per_minute: int = 8):
    rng = random.Random(seed)
    items = DATA["items"]
    idx = {s: i for i, s in enumerate(SERVED)}
    out = []
    for m in range(n_minutes):
        by: dict[str, list[float]] = {}
        for _ in range(per_minute):
            it = rng.choice(items)
            served, rerun, cand = rng.sample(SERVED, 3)
            if candidate != "v1":
                cand = candidate
            anc = len(DATA["anchors"][it["slice"]])

            def margin(arm: str, it=it, served=served, anc=anc) -> float:
                row = it["agree"][arm]
                return row[idx[served]] - sum(row[len(SERVED) :]) / anc

            by.setdefault(it["slice"], []).append(margin(cand) - margin(rerun))
        out.append(
            MinuteQuality(
                60.0 * m,
                tuple(SliceMinute(s, None, len(d), tuple(d)) for s, d in sorted(by.items())),
            )
        )
    return out


def test_observer_sequential_a_a_day_does_not_fire_and_hedging_fires_fast() -> None:
    spec = ObserverSpec()
    state = ObserverState()
    for minute in _minutes("v1", 3, 1440):
        state, decision = observe_minute(spec, 0.65, state, minute)
        assert not decision.fire, decision.reason
    state = ObserverState()
    minutes = iter(_minutes("law_stop_space__s2", 4, 120, per_minute=16))
    state, decision = observe_minute(spec, 0.65, state, next(minutes))
    while not decision.fire:
        state, decision = observe_minute(spec, 0.65, state, next(minutes))
    assert state.last_minute is not None and state.last_minute < 30 * 60.0, state.last_minute
    assert decision.evidence["test"] == "paired e-process"
