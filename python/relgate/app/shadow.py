"""Shadow scoring's inputs: a cold start's mirrored answers paired with the served ones.

The gateway mirrors each eligible request of the live release to the candidate and records the
mirror's trace under the served trace's id plus ``relgate.traces.SHADOW_SUFFIX``
(``relgate.gateway.server``). ``mirrored_pairs`` reads both back from the trace store: per slice,
up to ``cap`` most recent requests that both releases answered (2xx, a non-empty answer), the
served trace as the replay's reference (``relgate.rollout.replay.ReplayTrace``) and the mirrored
answer as the candidate's. The probe (``relgate.app.probes.RolloutProbe``) then has the live
release re-answer the same traces for the noise-aware ceiling and scores everything with the
gate's judge through ``replay_quality``, exactly as a canary's replay; the shadow's verdict is
``relgate.rollout.shadow.evaluate_shadow``.

A served trace evicted from its ring buffer leaves its mirror unpaired (skipped, never guessed).
"""

from __future__ import annotations

from dataclasses import dataclass

from relgate.errors import NotFoundError
from relgate.rollout.replay import ReplayTrace, replayable, select_recent
from relgate.traces import Trace, TraceStore, served_trace_id

__all__ = ["MirroredPairs", "mirrored_pairs"]


@dataclass(frozen=True, slots=True)
class MirroredPairs:
    """Per slice the chosen served traces (as replay rows), the candidate's mirrored answer of
    each (by served trace id), and the served traces themselves (to re-ask the live release)."""

    by_slice: dict[str, list[ReplayTrace]]
    answers: dict[str, str]
    served: list[Trace]

    @property
    def n(self) -> int:
        """How many pairs were chosen."""
        return sum(len(rows) for rows in self.by_slice.values())


def mirrored_pairs(traces: TraceStore, candidate: str, live: str, cap: int) -> MirroredPairs:
    """Up to ``cap`` most recent (served by ``live``, mirrored to ``candidate``) pairs per slice
    (see the module docstring)."""
    served: dict[str, Trace] = {}
    answers: dict[str, str] = {}
    for name in traces.slices(shadow=True):
        # Mirrors finish in any order and some are unpaired: read a bounded margin past cap.
        for mirror in traces.recent(name, 2 * cap, release=candidate, shadow=True):
            sid = served_trace_id(mirror.id)
            if sid is None or not mirror.answer:
                continue
            try:
                original = traces.get(sid)
            except NotFoundError:
                continue
            if original.slice != name or original.tenant != mirror.tenant:
                continue
            served[sid] = original
            answers[sid] = mirror.answer
    by_slice = select_recent(replayable(served.values(), live), cap) if served else {}
    chosen = [served[t.trace_id] for rows in by_slice.values() for t in rows]
    kept = {t.id for t in chosen}
    return MirroredPairs(by_slice, {k: v for k, v in answers.items() if k in kept}, chosen)
