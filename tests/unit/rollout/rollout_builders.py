"""Builders shared by the rollout tests: readings that pass, fail or say nothing."""

from __future__ import annotations

from typing import Any

from relgate.rollout import (
    ErrorRateReading,
    LatencyReading,
    QualityReading,
    Readings,
    SliceQuality,
)


def latency(ratio: float = 1.0, n: int = 1_000, stable_n: int = 19_000) -> LatencyReading:
    return LatencyReading(
        candidate_p95_s=0.4 * ratio, stable_p95_s=0.4, candidate_count=n, stable_count=stable_n
    )


def errors(
    cand_5xx: int = 1, n: int = 1_000, stable_5xx: int = 19, stable_n: int = 19_000
) -> ErrorRateReading:
    return ErrorRateReading(
        candidate_5xx=cand_5xx, candidate_total=n, stable_5xx=stable_5xx, stable_total=stable_n
    )


def quality(**q_by_slice: float) -> QualityReading:
    """Slices at the given q (ceiling 0.4, n = 50); default two healthy slices."""
    q_by_slice = q_by_slice or {"health": 0.95, "law": 0.9}
    return QualityReading(
        slices=tuple(
            SliceQuality(name, 50, 0.4 * q, 0.4) for name, q in sorted(q_by_slice.items())
        ),
        judge_sha256="j" * 64,
    )


def good(requests: int = 0, **kw: Any) -> Readings:
    return Readings(requests=requests, latency=latency(), errors=errors(), quality=quality(), **kw)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class RecordingRouting:
    """A Routing that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def set_weight(self, weight_bp: int) -> None:
        self.calls.append(("set_weight", weight_bp))

    def swap_to(self, release: str) -> None:
        self.calls.append(("swap_to", release))

    def set_shadow(self, enabled: bool) -> None:
        self.calls.append(("set_shadow", enabled))


class Feed:
    """A readings provider: tests push Readings, the controller pops them."""

    def __init__(self) -> None:
        self.pending: list[Readings] = []

    def push(self, r: Readings) -> None:
        self.pending.append(r)

    def __call__(self) -> Readings:
        if not self.pending:
            return Readings()
        return self.pending.pop(0)
