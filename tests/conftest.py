"""Shared fixtures: a store on SQLite, and on PostgreSQL too when one is configured.

``RELGATE_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` prints it) names a database whose user may
create databases; each PostgreSQL-backed test gets a fresh database, dropped afterwards (the
append-only triggers would refuse any other cleanup).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from relgate.store import Store
from relgate.testing.postgres import scratch_database
from sqlalchemy.engine import Connection

POSTGRES_URL = os.environ.get("RELGATE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]

API_MANIFEST: dict[str, Any] = {
    "model": {
        "kind": "api",
        "provider": "openai",
        "model": "gpt-4o-mini-2024-07-18",
        "endpoint": "https://api.openai.com/v1",
    },
    "prompt_template": {
        "ref": "support-qa@3",
        "system": "You answer customer questions. Say so when you do not know.",
        "template": "Question: {question}\nAnswer:",
        "variables": ["question"],
    },
    "routing": {"matchers": [{"domain": "legal"}]},
    "dataset": {"ref": "truthfulqa-graded@1", "sha256": "ab" * 32},
    "previous_release": None,
}


@pytest.fixture
def api_manifest() -> dict[str, Any]:
    """A valid closed-weight manifest as plain data (a fresh copy per test)."""
    return copy.deepcopy(API_MANIFEST)


class StepClock:
    """A clock that advances one second per reading: deterministic receipt times."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (SQLite in tmp_path) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    pytest.importorskip("psycopg")
    assert POSTGRES_URL is not None
    with scratch_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def store(store_url: str | None, tmp_path: Path, clock: StepClock) -> Iterator[Store]:
    """An open, migrated store; parametrized over the configured backends."""
    opened = Store.open(store_url, data_dir=tmp_path / "data", clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _bypass_append_only(store: Store, table: str) -> Iterator[Connection]:
    """A raw connection on which ``table``'s append-only triggers are off: what an attacker
    with database access can do. The triggers come back afterwards (PostgreSQL) or stay
    dropped (SQLite; the test's store is thrown away)."""
    engine = store.db.engine
    with engine.begin() as conn:
        if store.dialect == "sqlite":
            for event in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
        else:
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield conn
        if store.dialect != "sqlite":
            conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
def bypass_append_only() -> Callable[[Store, str], AbstractContextManager[Connection]]:
    """``with bypass_append_only(store, "receipts") as conn: conn.exec_driver_sql(...)``."""
    return _bypass_append_only


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrize here (not in the fixture) so test ids say which backend ran.
    if "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", BACKENDS, indirect=True)


# What `make test` could not run on this machine, said loudly at the end with the one command
# that enables it (a fresh machine lacks PostgreSQL and chromium; `.ci/run` installs both).
_ENABLE = (
    ("chromium", "run .ci/browser.sh (installs Debian's chromium), then make test"),
    ("playwright", "make dev (installs the dev extra, playwright included)"),
)
_store_tests: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _store_tests.extend(
        item.nodeid for item in items if "store_url" in getattr(item, "fixturenames", ())
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines: list[str] = []
    if POSTGRES_URL is None and _store_tests:
        lines.append(
            f"{len(_store_tests)} store tests ran on SQLite only, not PostgreSQL: enable with "
            '`eval "$(.ci/postgres.sh)"; make test` (installs and starts PostgreSQL on 127.0.0.1)'
        )
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, n in sorted(reasons.items()):
        hint = next((how for key, how in _ENABLE if key in reason.lower()), None)
        lines.append(f"{n} skipped: {reason}" + (f" -> {hint}" if hint else ""))
    deselected = len(terminalreporter.stats.get("deselected", []))
    if deselected:
        lines.append(
            f"{deselected} deselected (slow-marked or -k/-m): run them with make test-slow"
        )
    if lines:
        terminalreporter.write_sep("!", "NOT RUN HERE", yellow=True, bold=True)
        for line in lines:
            terminalreporter.write_line(line, yellow=True, bold=True)
