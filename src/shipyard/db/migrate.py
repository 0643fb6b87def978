"""Apply Alembic migrations on start.

When the schema is already at the newest revision (every start but the first after an upgrade),
nothing is imported or run. Otherwise the migration runs in a short-lived child process, so the
long-lived server never carries Alembic and its template engine in memory.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shipyard.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
# Several replicas may start at once against one PostgreSQL; one migrates, the others wait.
PG_MIGRATION_LOCK = 7_420_001


class MigrationFailed(RuntimeError):
    pass


def head_revision() -> str:
    """Revision files are named <revision>.py with increasing numeric prefixes."""
    return max(p.stem for p in VERSIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.py"))


async def current_revision(conn: AsyncConnection) -> str | None:
    has_table = await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))
    if not has_table:
        return None
    return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def upgrade_to_head(database: Database) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there."""
    async with database.engine.connect() as conn:
        if await current_revision(conn) == head_revision():
            return
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shipyard.db.run_migrations",
        env={**os.environ, "SHIPYARD_MIGRATE_URL": database.url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        raise MigrationFailed(
            "the database migration failed; nothing was started:\n"
            + output.decode(errors="replace")
        )
