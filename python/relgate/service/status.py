"""The one table mapping `relgate.errors` to gRPC status codes.

The server looks up the most specific class of a raised error (walking its MRO, so
`ManifestConflictError` is found before its base `ManifestError`) and aborts the call with
that code, the error's message as details, and the class name in the `relgate-error`
trailing metadata (``relgate.errors.GRPC_ERROR_METADATA_KEY``); the client rebuilds the
class from that name (``relgate.client.client.error_from_status``). Anything not in the table
is logged by the server and answered INTERNAL with a generic message (internals are not leaked
to clients).

Choices:
- `ManifestConflictError` -> FAILED_PRECONDITION, not ALREADY_EXISTS. Registering content
  that already exists is idempotent success, so ALREADY_EXISTS never describes it; a
  conflict means the caller's stated expectation (`expected_sha256`) does not hold for the
  content it sent, which is a failed precondition in gRPC's sense ("the system is not in a
  state required for the operation"), and retrying the same request cannot succeed.
- `AuthError` -> UNAUTHENTICATED when no valid key identified the caller, PERMISSION_DENIED
  when it did but its role or tenant does not allow the call (`authenticated=True`).
"""

from __future__ import annotations

import grpc

from relgate import errors

_TABLE: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ManifestError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ManifestConflictError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.IntegrityError: grpc.StatusCode.DATA_LOSS,
    errors.InvalidTransitionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.GateError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AuthError: grpc.StatusCode.UNAUTHENTICATED,
    errors.JudgeUnavailableError: grpc.StatusCode.UNAVAILABLE,
}


def status_for(exc: BaseException, *, authenticated: bool = False) -> grpc.StatusCode | None:
    """The status code for `exc`, or None when it is not a mapped error (answer INTERNAL).

    `authenticated` says whether a valid key had identified the caller when `exc` was
    raised: an `AuthError` is then a permission problem, not an identity problem.
    """
    for cls in type(exc).__mro__:
        code = _TABLE.get(cls)
        if code is not None:
            if code is grpc.StatusCode.UNAUTHENTICATED and authenticated:
                return grpc.StatusCode.PERMISSION_DENIED
            return code
    return None


__all__ = ["status_for"]
