"""A scratch PostgreSQL database for tests and benchmarks: created, handed out, dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["scratch_database"]


@contextmanager
def scratch_database(server_url: str, prefix: str = "relgate_test") -> Iterator[str]:
    """Create a database named ``PREFIX_<12 hex>`` on the PostgreSQL server at ``server_url``
    (a plain ``postgresql://`` URL gets the psycopg driver), yield its URL, and drop it (with
    its connections) afterwards."""
    import sqlalchemy as sa

    if server_url.startswith("postgresql://"):
        server_url = "postgresql+psycopg://" + server_url.split("://", 1)[1]
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
