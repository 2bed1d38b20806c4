"""Alembic environment, run programmatically by ``Store.open`` (there is no alembic.ini).

The caller passes an open connection, already inside the transaction (and, on PostgreSQL,
holding the advisory lock) that serializes concurrent openers, in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from relgate.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
