"""Durable state: releases, receipts, facts, tree heads, anchors, API keys and judge jobs.

``Store.open(url, data_dir=...)`` gives SQLite in WAL mode under the data directory by default,
or PostgreSQL by URL. See ``relgate.store.store`` for the guarantees (append-only, atomic
decisions, no forks) and ``relgate.store.schema`` for how the schema enforces them.
"""

from __future__ import annotations

from relgate.store.records import ApiKey, RegisterResult, StoredFact, StoredRelease
from relgate.store.store import Store

__all__ = ["ApiKey", "RegisterResult", "Store", "StoredFact", "StoredRelease"]
