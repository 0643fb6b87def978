"""Following a run's log live: the lines stored after a sequence number, then the batches the
writer publishes once they are stored. The database is read only to catch up (at the start, after
a gap, or when the subscriber's queue overflowed); batches fan out from memory as the text the
writer joined once, so N viewers cost N frames per batch, not N queries or N x lines objects
(bench/log_stream.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from shipyard.db.engine import Database
from shipyard.events.bus import EventBus, log_topic
from shipyard.logs import repository

CATCH_UP_LIMIT = 10_000


class LogFollower:
    """``next()`` returns the run's lines after ``cursor`` (a seq), in order, each once."""

    def __init__(
        self, database: Database, queue: asyncio.Queue[dict[str, Any]], run_id: str, after: int
    ) -> None:
        self.database, self.queue, self.run_id = database, queue, run_id
        self.cursor = after
        self._catch_up = True

    async def next(self, timeout: float) -> str | None:
        """The lines after the cursor joined with newlines: stored ones first, else what is
        published within ``timeout`` seconds (every batch already queued is taken too); None
        when nothing came (or a ``wake_on`` event did)."""
        if self._catch_up:
            text = await self._stored()
            if text is not None:
                return text
        with contextlib.suppress(TimeoutError):
            events = [await asyncio.wait_for(self.queue.get(), timeout)]
            while not self.queue.empty():
                events.append(self.queue.get_nowait())
            return await self._take(events)
        return None

    async def _take(self, events: list[dict[str, Any]]) -> str | None:
        texts: list[str] = []
        for event in events:
            if event.get("type") == "deployment":
                continue  # another topic's wake-up: next() returns so its caller can look
            if event.get("type") != "logs" or "text" not in event:
                self._catch_up = True  # the queue overflowed: what it dropped is stored
                continue
            first, last = event["first_seq"], event["last_seq"]
            if last <= self.cursor:
                continue
            if first > self.cursor + 1:  # a batch went by unseen: read it from the database
                self._catch_up = True
                break
            if first == self.cursor + 1:
                texts.append(event["text"])
            else:  # partly read already (from the database while subscribing)
                rows = event["lines"][self.cursor + 1 - first :]
                texts.append("\n".join(row["line"] for row in rows))
            self.cursor = last
        if self._catch_up:
            stored = await self._stored()
            if stored is not None:
                texts.append(stored)
        return "\n".join(texts) if texts else None

    async def _stored(self) -> str | None:
        async with self.database.reading() as session:
            rows = await repository.texts_after(session, self.run_id, self.cursor, CATCH_UP_LIMIT)
        # A full page may have more behind it; otherwise the bus carries on from here.
        self._catch_up = len(rows) >= CATCH_UP_LIMIT
        if not rows:
            return None
        self.cursor = rows[-1][0]
        return "\n".join(line for _, line in rows)


@contextlib.asynccontextmanager
async def follow(
    database: Database, bus: EventBus, run_id: str, after: int = 0, wake_on: tuple[str, ...] = ()
) -> AsyncIterator[LogFollower]:
    """Subscribed before the first read, so no line falls between the database and the bus.
    An event on a ``wake_on`` topic ends a ``next()`` wait early (it returns None)."""
    async with bus.subscribe(log_topic(run_id), *wake_on) as queue:
        yield LogFollower(database, queue, run_id, after)
