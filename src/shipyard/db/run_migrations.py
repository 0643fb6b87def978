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


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)
    if connection.dialect.name == "sqlite":
        # Foreign keys were off while tables were rebuilt; prove nothing was left dangling.
        broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")


async def upgrade(url: str, target: str = "head") -> None:
    database = Database(url, foreign_keys=False)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(_upgrade, target)
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(upgrade(os.environ["SHIPYARD_MIGRATE_URL"]))
