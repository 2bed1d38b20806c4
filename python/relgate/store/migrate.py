"""Run the bundled Alembic migrations programmatically (no alembic.ini, no CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade_to_head"]

#: The Alembic script directory, shipped inside the package.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(conn: Connection) -> Config:
    """An Alembic config whose env.py migrates over ``conn``."""
    from alembic.config import Config  # alembic costs ~100 ms to import: only on open

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def upgrade_to_head(conn: Connection) -> None:
    """Upgrade the schema to the newest revision inside the caller's transaction."""
    from alembic import command

    command.upgrade(alembic_config(conn), "head")
