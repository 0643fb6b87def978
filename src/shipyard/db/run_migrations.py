"""``python -m shipyard.db.run_migrations``: upgrade SHIPYARD_MIGRATE_URL's database to head."""

from __future__ import annotations

import asyncio
import os

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from shipyard.db.engine import Database
from shipyard.db.migrate import MIGRATIONS_DIR, PG_MIGRATION_LOCK


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade(url: str) -> None:
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(upgrade(os.environ["SHIPYARD_MIGRATE_URL"]))
