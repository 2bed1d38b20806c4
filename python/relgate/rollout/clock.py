"""The rollout clock: one injectable source of seconds for the controller, the observer and the
gateway's trace windows.

``ScaledClock`` runs ``scale`` times faster than the wall clock from a persisted anchor, so a
restarted server continues the same timeline (a crash does not move a hold's clock backwards);
``ManualClock`` only moves when told to (tests).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from relgate.errors import InvalidInputError

__all__ = ["ManualClock", "ScaledClock"]


class ScaledClock:
    """Seconds that run ``scale`` times faster than wall time, from a persisted anchor.

    ``now = anchor + (time.time() - anchor) * scale``. With ``anchor_file`` the first start
    writes the anchor and later starts read it, so the timeline survives a restart.
    """

    def __init__(self, scale: float = 1.0, anchor_file: Path | None = None) -> None:
        if not scale > 0:
            raise InvalidInputError(f"time scale must be > 0, got {scale}")
        self.scale = float(scale)
        anchor = time.time()
        if anchor_file is not None:
            if anchor_file.is_file():
                anchor = float(json.loads(anchor_file.read_text())["anchor"])
            else:
                anchor_file.write_text(json.dumps({"anchor": anchor}))
        self.anchor = anchor

    def __call__(self) -> float:
        if self.scale == 1.0:
            return time.time()
        return self.anchor + (time.time() - self.anchor) * self.scale


class ManualClock:
    """A clock that moves only when told (tests): ``advance(seconds)`` or ``set(t)``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); returns the new time."""
        if seconds < 0:
            raise InvalidInputError("a clock does not go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        """Jump to ``t`` (not earlier than now)."""
        with self._lock:
            if t < self._t:
                raise InvalidInputError("a clock does not go backwards")
            self._t = float(t)
