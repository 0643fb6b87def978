"""Migrations: the head the server checks for is Alembic's head, and the models match the schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from shipyard.config import Settings
from shipyard.db.base import Base
from shipyard.db.engine import Database
from shipyard.db.migrate import current_revision, head_revision
from shipyard.db.run_migrations import alembic_config


def test_fast_path_head_is_alembics_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == head_revision()


async def test_migrated_schema_matches_the_models(settings: Settings) -> None:
    database = Database(settings.resolved_database_url)

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    try:
        async with database.engine.connect() as conn:
            assert await current_revision(conn) == head_revision()
            assert await conn.run_sync(diff) == []
    finally:
        await database.dispose()
