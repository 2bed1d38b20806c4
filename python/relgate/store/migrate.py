"""Run the bundled Alembic migrations programmatically (no alembic.ini, no CLI)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade_to_head"]

#: The Alembic script directory, shipped inside the package.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(conn: Connection) -> Config:
    """An Alembic config whose env.py migrates over ``conn``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def upgrade_to_head(conn: Connection) -> None:
    """Upgrade the schema to the newest revision inside the caller's transaction."""
    command.upgrade(alembic_config(conn), "head")
