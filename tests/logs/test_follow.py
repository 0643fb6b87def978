"""Following a run's log: stored lines first, then published batches, every line once and in
order, reading the database again after a gap or an overflow."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from shipyard.config import Settings
from shipyard.db.engine import Database
from shipyard.events.bus import OVERFLOW, EventBus
from shipyard.logs import follow as follow_module
from shipyard.logs.follow import LogFollower, follow
from shipyard.logs.writer import LogWriter
from shipyard.models import Run
from shipyard.secrets.redaction import Redactor


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    async with database.transaction() as s:
        s.add(Run(id="r1", kind="execution", status="running", created_at_ms=0, updated_at_ms=0))
    try:
        yield database
    finally:
        await database.dispose()


async def write(db: Database, bus: EventBus, *lines: str) -> None:
    """Lines stored and published by a writer, as a runner writes them."""
    writer = LogWriter(db, bus, "r1", Redactor([]))
    for line in lines:
        await writer.write(line)
    await writer.close()


def drop_published(follower: LogFollower) -> None:
    while not follower.queue.empty():
        follower.queue.get_nowait()


async def test_stored_lines_come_first_then_published_ones(db: Database) -> None:
    bus = EventBus()
    await write(db, bus, "a", "b")
    async with follow(db, bus, "r1") as follower:
        assert await follower.next(0) == "a\nb"
        await write(db, bus, "c", "d")
        assert await follower.next(1) == "c\nd"
        assert await follower.next(0.05) is None


async def test_lines_stored_and_published_while_subscribing_come_once(db: Database) -> None:
    bus = EventBus()
    async with follow(db, bus, "r1") as follower:
        await write(db, bus, "a", "b")  # in the database and in the queue
        assert await follower.next(0) == "a\nb"
        assert await follower.next(0.05) is None


async def test_resumes_after_the_given_seq(db: Database) -> None:
    bus = EventBus()
    await write(db, bus, "a", "b", "c")
    async with follow(db, bus, "r1", after=2) as follower:
        assert await follower.next(0) == "c"


async def test_a_missed_batch_is_read_from_the_database(db: Database) -> None:
    bus = EventBus()
    async with follow(db, bus, "r1") as follower:
        assert await follower.next(0) is None
        await write(db, bus, "a", "b")
        drop_published(follower)
        await write(db, bus, "c")
        assert await follower.next(1) == "a\nb\nc"


async def test_after_an_overflow_what_was_dropped_is_read_from_the_database(
    db: Database,
) -> None:
    bus = EventBus()
    async with follow(db, bus, "r1") as follower:
        assert await follower.next(0) is None
        await write(db, bus, "a", "b")
        drop_published(follower)
        follower.queue.put_nowait(OVERFLOW)
        assert await follower.next(1) == "a\nb"
        assert await follower.next(0.05) is None


async def test_a_long_backlog_comes_in_pages(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_module, "CATCH_UP_LIMIT", 2)
    bus = EventBus()
    await write(db, bus, "a", "b", "c", "d", "e")
    async with follow(db, bus, "r1") as follower:
        pages = [await follower.next(0) for _ in range(4)]
    assert pages == ["a\nb", "c\nd", "e", None]


async def test_an_event_on_a_wake_on_topic_ends_the_wait_early(db: Database) -> None:
    bus = EventBus()
    async with follow(db, bus, "r1", wake_on=("app:a",)) as follower:
        assert await follower.next(0) is None
        bus.publish("app:a", {"type": "deployment", "run_id": "r2"})
        began = time.monotonic()
        assert await follower.next(10) is None
        assert time.monotonic() - began < 2
        await write(db, bus, "a")
        assert await follower.next(1) == "a"
