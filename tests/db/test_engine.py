"""SQLite: WAL, foreign keys, a busy timeout, write transactions that begin IMMEDIATE."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from shipyard.config import Settings
from shipyard.db.engine import Database
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(PG_URL is not None, reason="SQLite behaviour")


@pytest.fixture
async def database(settings: Settings) -> Database:
    db = Database(settings.resolved_database_url)
    yield db  # type: ignore[misc]
    await db.dispose()


async def test_pragmas(database: Database) -> None:
    async with database.reading() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 15000


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(Exception, match="FOREIGN KEY"):
        async with database.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO domains (id, app_id, hostname, tls_mode, created_at_ms) "
                    "VALUES ('d', 'no-such-app', 'x.example.com', 'managed', 0)"
                )
            )


async def test_write_transactions_take_the_lock_when_they_begin(database: Database) -> None:
    """A second writer waits for the first instead of failing half-way ("database is locked")."""
    order: list[str] = []

    async def writer(name: str, hold: float) -> None:
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE happens here
            order.append(f"{name} begins")
            await asyncio.sleep(hold)
            order.append(f"{name} commits")

    first = asyncio.create_task(writer("first", 0.3))
    await asyncio.sleep(0.1)
    await writer("second", 0)
    await first
    assert order == ["first begins", "first commits", "second begins", "second commits"]


async def test_readers_are_not_blocked_by_a_writer(database: Database) -> None:
    async with database.transaction() as writer:
        await writer.execute(text("SELECT 1"))
        async with database.reading() as reader:
            assert (await reader.execute(text("SELECT count(*) FROM apps"))).scalar() == 0
