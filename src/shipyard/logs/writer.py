"""Buffered, redacted log writing for one run: lines are stored in batches (one transaction per
batch, not per line) and published on the event bus once they are durable."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.clock import now_ms
from shipyard.db.engine import Database
from shipyard.events.bus import EventBus, log_topic
from shipyard.logs import repository
from shipyard.secrets.redaction import Redactor

FLUSH_LINES = 1000
FLUSH_SECONDS = 0.05
MAX_LINE_CHARS = 16_384


class LogWriter:
    def __init__(self, database: Database, bus: EventBus, run_id: str, redact: Redactor) -> None:
        self.database, self.bus, self.run_id, self.redact = database, bus, run_id, redact
        self._buffer: list[dict[str, Any]] = []
        self._seq: int | None = None
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def _next_seq(self) -> int:
        if self._seq is None:
            async with self.database.reading() as session:
                self._seq = await repository.last_seq(session, self.run_id)
        self._seq += 1
        return self._seq

    async def write(self, line: str, *, step_id: str | None = None, level: str = "INFO") -> None:
        """Queue one line (redacted, truncated); it is stored within FLUSH_SECONDS."""
        text = self.redact(line[:MAX_LINE_CHARS])
        self._buffer.append(
            {
                "run_id": self.run_id,
                "seq": await self._next_seq(),
                "step_id": step_id,
                "at_ms": now_ms(),
                "level": level,
                "line": text,
            }
        )
        if len(self._buffer) >= FLUSH_LINES:
            await self.flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            async with self.database.transaction() as session:
                await repository.append(session, batch)
            self.bus.publish(log_topic(self.run_id), {"type": "logs", "lines": batch})

    async def close(self) -> None:
        """Store what is buffered. The pending timed flush is awaited, not cancelled: cancelling
        it mid-transaction lost its batch and could leave SQLite's write lock held."""
        if self._flusher is not None and not self._flusher.done():
            await self._flusher
        await self.flush()
