"""Helpers for the scale-out tests: the rollout tests' server and traffic helpers, a fresh
PostgreSQL database per test, and the store's lease and chain as the tests read them."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The roll-and-observe helpers (subprocess servers, test backends, traffic) live beside the
# rollout tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rollout"))

import itertools

from relgate.receipts.model import Receipt
from relgate.store import Store
from relgate.store.control import CONTROL_PLANE_LEASE, LeaseState
from relgate.testing.postgres import scratch_database

POSTGRES_URL = os.environ.get("RELGATE_TEST_POSTGRES_URL")

__all__ = [
    "POSTGRES_URL",
    "assert_one_chain",
    "default_judge_sha",
    "fresh_postgres",
    "wait_for_lease",
]


@functools.cache
def default_judge_sha() -> str:
    """The judge sha of ``relgate serve``'s default judge (the embedding judge): what the gate
    results the tests record must name, since a rollout refuses a release gated with another."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge().judge_sha256


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new PostgreSQL database (skips without ``RELGATE_TEST_POSTGRES_URL``),
    dropped afterwards."""
    if POSTGRES_URL is None:
        pytest.skip("several control planes need PostgreSQL: set RELGATE_TEST_POSTGRES_URL")
    with scratch_database(POSTGRES_URL, "relgate_scale") as url:
        yield url


def wait_for_lease(
    store: Store, *, not_holder: str | None, timeout: float, poll_s: float = 0.005
) -> tuple[LeaseState, float]:
    """Poll the lease until a holder other than ``not_holder`` has it; returns it and when
    (``time.monotonic()``) it was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = store.control.lease(CONTROL_PLANE_LEASE)
        if lease is not None and lease.holder != not_holder:
            return lease, time.monotonic()
        time.sleep(poll_s)
    raise AssertionError(f"no control plane took the lease over within {timeout} s")


def assert_one_chain(receipts: list[Receipt]) -> None:
    """One unbroken chain: consecutive seqs, each receipt linking the one before."""
    assert [r.seq for r in receipts] == list(range(len(receipts)))
    for prev, nxt in itertools.pairwise(receipts):
        assert nxt.prev_receipt_sha256 == prev.receipt_sha256, f"fork at seq {nxt.seq}"
