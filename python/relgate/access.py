"""Access: tenants and the roles of API keys (the one definition the store, the service, the
gateway, the client and the CLI use).

Every release, receipt chain, rollout and key belongs to one tenant; ``DEFAULT_TENANT`` is the
tenant of a deployment that never names one.

Ordered viewer < releaser < admin < operator: reads need viewer, mutations releaser, key
management admin; admin acts on its own tenant only, operator on any (each cross-tenant use is a
receipt). ``worker`` and ``gateway`` are outside the order: a worker key may call the
WorkerService and nothing else, and only worker keys may call it; a gateway key serves a
tenant's traffic at the gateway and opens nothing on the gRPC API. The values match the API's
``relgate.v1.Role`` enum.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from relgate.errors import InvalidInputError

__all__ = ["DEFAULT_TENANT", "Role", "acting_as", "acting_tenant"]

DEFAULT_TENANT = "default"

_ACTING: ContextVar[str | None] = ContextVar("relgate_acting_tenant", default=None)


@contextmanager
def acting_as(tenant: str) -> Iterator[None]:
    """Run the block on behalf of ``tenant``: work it hands to shared machinery (judge jobs that
    workers pull) carries the tenant, so only that tenant's workers see its data. Follows the
    context into ``asyncio.to_thread`` and tasks started inside the block."""
    token = _ACTING.set(tenant)
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting_tenant() -> str | None:
    """The tenant the current code acts for (``acting_as``), or None outside any."""
    return _ACTING.get()


class Role(enum.IntEnum):
    """Ordered roles; the values match `relgate.v1.Role`."""

    VIEWER = 1
    RELEASER = 2
    ADMIN = 3
    # Outside the order: a worker key may call the WorkerService and nothing else, and only
    # worker keys may call it (see `authorize`).
    WORKER = 4
    # Above admin, and the one cross-tenant power: it may act on any tenant, and every such use
    # leaves a receipt in that tenant's chain. The bootstrap key is an operator key.
    OPERATOR = 5
    # Outside the order: a tenant's data-plane key (the API key OpenAI clients send to the
    # gateway; it also signs feedback). It opens nothing on the gRPC API.
    GATEWAY = 6

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
