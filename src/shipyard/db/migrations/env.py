"""Alembic environment: runs on the connection Shipyard hands over, or on the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from shipyard import models  # noqa: F401  (registers the tables)
from shipyard.config import Settings
from shipyard.db.base import Base
from shipyard.db.engine import Database

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    database = Database(Settings().resolved_database_url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await database.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_settings())
