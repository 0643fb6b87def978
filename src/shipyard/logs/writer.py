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
MAX_BUFFERED_LINES = 10 * FLUSH_LINES
MAX_LINE_CHARS = 16_384


class LogWriter:
    def __init__(self, database: Database, bus: EventBus, run_id: str, redact: Redactor) -> None:
        self.database, self.bus, self.run_id, self.redact = database, bus, run_id, redact
        self._buffer: list[dict[str, Any]] = []
        self._seq: int | None = None
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None  # the timed flush
        self._storing: asyncio.Task[None] | None = None  # the flush of a full batch

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
            # Stored in the background, so reading the next lines overlaps the insert; a
            # flush waiting for the lock takes everything buffered by then (bigger batches
            # when the database is slow). Past MAX_BUFFERED_LINES the writer waits for it.
            if self._storing is None or self._storing.done():
                self._storing = asyncio.create_task(self.flush())
            if len(self._buffer) >= MAX_BUFFERED_LINES:
                await self.flush()
            else:
                # A caller with a backlog never waits on its reads: let the flush and the
                # viewers run between batches.
                await asyncio.sleep(0)
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
            # Seqs in a batch are consecutive; the joined text is made once here, not once per
            # viewer (logs/follow.py).
            self.bus.publish(
                log_topic(self.run_id),
                {
                    "type": "logs",
                    "lines": batch,
                    "first_seq": batch[0]["seq"],
                    "last_seq": batch[-1]["seq"],
                    "text": "\n".join(row["line"] for row in batch),
                },
            )

    async def close(self) -> None:
        """Store what is buffered. Pending flushes are awaited, not cancelled: cancelling one
        mid-transaction lost its batch and could leave SQLite's write lock held."""
        for task in (self._flusher, self._storing):
            if task is not None and not task.done():
                await task
        await self.flush()
