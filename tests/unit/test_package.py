"""The package imports without optional extras and exposes one error hierarchy."""

from __future__ import annotations

import subprocess
import sys

import relgate
from relgate import errors


def test_version_matches_native() -> None:
    assert relgate.__version__.count(".") == 2


def test_value_errors_are_value_errors() -> None:
    for cls in (errors.InvalidInputError, errors.ManifestError, errors.ManifestConflictError):
        assert issubclass(cls, ValueError)
        assert issubclass(cls, errors.RelgateError)


def test_integrity_error_carries_context() -> None:
    err = errors.IntegrityError("bad", path="/x", rule="overlap", expected="a", actual="b")
    assert (err.path, err.rule, err.expected, err.actual) == ("/x", "overlap", "a", "b")


def test_core_import_does_not_pull_torch() -> None:
    code = "import sys, relgate, relgate.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
