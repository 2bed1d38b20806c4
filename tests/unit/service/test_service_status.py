"""The one error -> status table, and its reverse on the client."""

from __future__ import annotations

import grpc
import pytest
from relgate import errors
from relgate.client.client import error_from_status
from relgate.service.status import status_for

S = grpc.StatusCode


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidInputError("x"), S.INVALID_ARGUMENT),
        (errors.ManifestError("x"), S.INVALID_ARGUMENT),
        (errors.ManifestConflictError("x"), S.FAILED_PRECONDITION),
        (errors.IntegrityError("x", path="/p", rule="r"), S.DATA_LOSS),
        (errors.InvalidTransitionError("x"), S.FAILED_PRECONDITION),
        (errors.GateError("x"), S.FAILED_PRECONDITION),
        (errors.NotFoundError("x"), S.NOT_FOUND),
        (errors.AuthError("x"), S.UNAUTHENTICATED),
        (errors.JudgeUnavailableError("x"), S.UNAVAILABLE),
    ],
)
def test_mapped_errors(exc: Exception, code: grpc.StatusCode) -> None:
    assert status_for(exc) is code


def test_most_specific_class_wins() -> None:
    # ManifestConflictError is a ManifestError; the subclass entry must win.
    assert status_for(errors.ManifestConflictError("x")) is not status_for(
        errors.ManifestError("x")
    )


def test_auth_error_after_authentication_is_permission_denied() -> None:
    assert status_for(errors.AuthError("x"), authenticated=True) is S.PERMISSION_DENIED
    # Other errors do not depend on who called.
    assert status_for(errors.NotFoundError("x"), authenticated=True) is S.NOT_FOUND


@pytest.mark.parametrize(
    "exc", [RuntimeError("boom"), KeyError("k"), errors.JudgeError("x"), errors.RelgateError()]
)
def test_unmapped_errors_are_internal(exc: Exception) -> None:
    assert status_for(exc) is None


def test_client_rebuilds_the_server_class() -> None:
    err = error_from_status(S.FAILED_PRECONDITION, "differs", "ManifestConflictError")
    assert type(err) is errors.ManifestConflictError
    assert str(err) == "differs"


def test_client_ignores_class_names_outside_the_hierarchy() -> None:
    # A hostile or buggy server must not make the client instantiate arbitrary names.
    err = error_from_status(S.NOT_FOUND, "gone", "SystemExit")
    assert type(err) is errors.NotFoundError


def test_client_falls_back_to_the_code() -> None:
    assert type(error_from_status(S.PERMISSION_DENIED, "no", None)) is errors.AuthError
    unreachable = error_from_status(S.UNAVAILABLE, "connect failed", None)
    assert type(unreachable) is errors.RelgateError
    assert "unavailable" in str(unreachable)
