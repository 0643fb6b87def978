"""An aiosqlite connection that does one thread round trip per statement instead of four.

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes
one call per DB-API step: create the cursor, execute, fetch all rows, close the cursor. Each call
is a queue hand-off to that thread and a wake-up of the event loop, about 60-80 us of CPU, while
the query itself takes microseconds: a request that reads a token and a list paid ~1 ms in
hand-offs alone (bench/RESULTS.md). Here ``cursor()`` is a plain object, and ``execute`` runs the
statement, fetches its rows and closes the sqlite3 cursor in a single call on the thread; the
rows are then served from memory. A rollback outside a transaction (a read-only session's end)
makes no call at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

_Description = tuple[tuple[str, None, None, None, None, None, None], ...] | None


class BufferedCursor:
    """The part of aiosqlite's Cursor that SQLAlchemy uses, with results held in memory."""

    arraysize = 1

    def __init__(self, connection: BufferedConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.description: _Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> BufferedCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __await__(self) -> Any:
        async def itself() -> BufferedCursor:
            return self

        return itself().__await__()

    def _run(self, work: Callable[[sqlite3.Cursor], object]) -> Callable[[], tuple[Any, ...]]:
        raw = self._connection.raw

        def statement() -> tuple[Any, ...]:
            cursor = raw.cursor()
            try:
                work(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.description, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        return statement

    async def _execute_on_thread(self, work: Callable[[sqlite3.Cursor], object]) -> BufferedCursor:
        rows, description, rowcount, lastrowid = await self._connection.call(self._run(work))
        self._rows, self.description = rows, description
        self.rowcount, self.lastrowid = rowcount, lastrowid
        return self

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> BufferedCursor:
        return await self._execute_on_thread(lambda c: c.execute(sql, parameters or ()))

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> BufferedCursor:
        return await self._execute_on_thread(lambda c: c.executemany(sql, parameters))

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = size or self.arraysize
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._rows = []


class BufferedConnection(aiosqlite.Connection):
    """aiosqlite's connection (its thread, commit, close) with buffered cursors."""

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    async def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on the connection's thread (one hand-off)."""
        return await self._execute(work)

    def cursor(self) -> BufferedCursor:  # type: ignore[override]
        return BufferedCursor(self)

    async def rollback(self) -> None:
        # Reading the autocommit flag is safe from any thread; a rollback with no transaction
        # open (every read-only session ends with one) would be a hand-off for nothing.
        if self._connection is not None and self._conn.in_transaction:
            await super().rollback()


def connector(path: Path | str) -> Callable[[], BufferedConnection]:
    """The ``async_creator`` for SQLAlchemy: a started BufferedConnection to ``path``."""

    def connect() -> sqlite3.Connection:
        # check_same_thread=False only so the event loop can read in_transaction; every
        # statement still runs on the connection's own thread.
        return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)

    def create() -> BufferedConnection:
        connection = BufferedConnection(connect, iter_chunk_size=64)
        connection._thread.daemon = True
        return connection

    return create
