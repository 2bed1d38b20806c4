"""The package imports without optional extras and exposes one error hierarchy."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import relgate
from relgate import errors


def test_version_matches_native() -> None:
    # The extension that is loaded was built from this tree's Cargo workspace (a stale build
    # would carry another version), and the installed distribution says the same.
    cargo = tomllib.loads((Path(__file__).parents[2] / "Cargo.toml").read_text())
    workspace_version = cargo["workspace"]["package"]["version"]
    assert relgate.__version__ == workspace_version
    assert importlib.metadata.version("relgate") == workspace_version


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
