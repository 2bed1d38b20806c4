"""Access: tenants and the roles of API keys (the one definition the store, the service, the
gateway, the client and the CLI use).

Every release, receipt chain, rollout and key belongs to one tenant; ``DEFAULT_TENANT`` is the
tenant of a deployment that never names one.

Ordered viewer < releaser < admin: reads need viewer, mutations releaser, key management admin.
``worker`` is outside the order: a worker key may call the WorkerService and nothing else, and
only worker keys may call it. The values match the API's ``relgate.v1.Role`` enum.
"""

from __future__ import annotations

import enum

from relgate.errors import InvalidInputError

__all__ = ["DEFAULT_TENANT", "Role"]

DEFAULT_TENANT = "default"


class Role(enum.IntEnum):
    """Ordered roles; the values match `relgate.v1.Role`."""

    VIEWER = 1
    RELEASER = 2
    ADMIN = 3
    # Outside the order: a worker key may call the WorkerService and nothing else, and only
    # worker keys may call it (see `authorize`).
    WORKER = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        """`"viewer"`, `"releaser"`, `"admin"` or `"worker"` (case-insensitive)."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise InvalidInputError(
                f"unknown role {name!r} (expected {', '.join(r.label for r in cls)})"
            ) from None

    @property
    def label(self) -> str:
        """The lower-case name stored with a key."""
        return self.name.lower()

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        """Every role's label, in value order."""
        return tuple(r.label for r in cls)
