"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys and a busy timeout. pysqlite's own transaction handling
is turned off so that SQLAlchemy's ``begin`` decides: write sessions open with ``BEGIN
IMMEDIATE``, which takes the write lock up front instead of failing with "database is locked"
when a reader later tries to upgrade; read sessions (``session(write=False)``, ``reading()``)
open none, so each of their statements reads the latest committed state on its own (WAL readers
never wait), which saves two round trips to SQLite's thread per request; other connections
(``engine.begin()``) open with ``BEGIN``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shipyard.db.sqlite_connection import connector

SQLITE_BUSY_TIMEOUT_MS = 15_000
_IMMEDIATE = "shipyard_sqlite_immediate"
_AUTOCOMMIT_READS = "shipyard_sqlite_autocommit_reads"


def _install_sqlite_hooks(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # aiosqlite wraps the sqlite3 connection; isolation_level=None hands BEGIN to us.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not options.get(_AUTOCOMMIT_READS, False):
            conn.exec_driver_sql("BEGIN")


class Database:
    """Owns the engine and hands out read and write sessions."""

    def __init__(self, url: str, *, echo: bool = False, foreign_keys: bool = True) -> None:
        """``foreign_keys=False`` is for SQLite migrations only: batch mode rebuilds a table by
        dropping it, and with enforcement on that drop would cascade into the rows that
        reference it."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        if self.is_sqlite:
            kwargs["async_creator"] = connector(make_url(url).database or "")
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine, foreign_keys=foreign_keys)
            write_engine = self.engine.execution_options(**{_IMMEDIATE: True})
            read_engine = self.engine.execution_options(**{_AUTOCOMMIT_READS: True})
        else:
            write_engine = read_engine = self.engine
        self._read = async_sessionmaker(read_engine, expire_on_commit=False)
        self._write = async_sessionmaker(write_engine, expire_on_commit=False)

    def session(self, *, write: bool) -> AsyncSession:
        """A new session; ``write`` sessions take SQLite's write lock when they begin."""
        return (self._write if write else self._read)()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write session that commits on success and rolls back on error."""
        async with self.session(write=True) as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read session for queries that change nothing."""
        async with self.session(write=False) as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
