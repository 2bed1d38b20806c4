"""The one exception hierarchy of relgate.

The native core raises these same classes (``relgate._native`` imports this module to build
its errors), and the gRPC service maps them to status codes through one table. Decisions
are not errors: a failed gate or a failed monitor is a value, never an exception.
"""

from __future__ import annotations

#: The gRPC trailing metadata key under which the server names the class of an error, so the
#: client raises the same class (``relgate.service.status`` / ``relgate.client``).
GRPC_ERROR_METADATA_KEY = "relgate-error"


class RelgateError(Exception):
    """Base class of every error relgate raises on purpose."""


class InvalidInputError(RelgateError, ValueError):
    """Arguments that cannot be used: mismatched lengths, bad offsets, unknown options."""


class ManifestError(RelgateError, ValueError):
    """A release manifest that fails validation."""


class ManifestConflictError(ManifestError):
    """A request names a release by sha256 but expects different content."""


class IntegrityError(RelgateError):
    """Data that does not match what it claims to be: a malformed or hostile weight file,
    a digest that differs from the expected one, a broken receipt chain.

    ``path`` names the file, ``rule`` the broken validation rule (a short stable id), and
    ``expected`` / ``actual`` the two sides of a mismatch when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        rule: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule
        self.expected = expected
        self.actual = actual


class GateError(RelgateError):
    """The gate could not be run (not: the gate failed, which is a verdict)."""


class InvalidTransitionError(RelgateError):
    """A rollout or release state change that the current state does not allow."""


class NotFoundError(RelgateError, LookupError):
    """A release, receipt, tensor or file that does not exist."""


class AuthError(RelgateError):
    """Missing, unknown or under-privileged credentials."""


class JudgeError(RelgateError):
    """A judge failed to score."""


class JudgeUnavailableError(JudgeError):
    """No judge can serve the request in time."""


__all__ = [
    "GRPC_ERROR_METADATA_KEY",
    "AuthError",
    "GateError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidTransitionError",
    "JudgeError",
    "JudgeUnavailableError",
    "ManifestConflictError",
    "ManifestError",
    "NotFoundError",
    "RelgateError",
]
