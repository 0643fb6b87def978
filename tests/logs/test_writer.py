"""The log writer stores every line, in order, even when closed while a flush is under way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from shipyard.config import Settings
from shipyard.db.engine import Database
from shipyard.events.bus import EventBus, log_topic
from shipyard.logs import repository
from shipyard.logs.writer import FLUSH_LINES, FLUSH_SECONDS, LogWriter
from shipyard.models import LogLine, Run
from shipyard.secrets.redaction import Redactor


async def test_close_during_a_timed_flush_loses_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = repository.append

    async def slow_append(session: Any, rows: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.1)  # the timed flush is still writing when close() is called
        await real_append(session, rows)

    monkeypatch.setattr(repository, "append", slow_append)
    db = Database(settings.resolved_database_url)
    try:
        async with db.transaction() as s:
            s.add(
                Run(id="r1", kind="execution", status="running", created_at_ms=0, updated_at_ms=0)
            )
        writer = LogWriter(db, EventBus(), "r1", Redactor([]))
        for i in range(5):
            await writer.write(f"line {i}")
        await asyncio.sleep(FLUSH_SECONDS + 0.03)
        await writer.close()
        async with db.reading() as s:
            lines = list((await s.execute(select(LogLine.line).order_by(LogLine.seq))).scalars())
        assert lines == [f"line {i}" for i in range(5)]
    finally:
        await db.dispose()


async def test_a_burst_of_many_batches_is_stored_and_published_in_order(
    settings: Settings,
) -> None:
    db = Database(settings.resolved_database_url)
    bus = EventBus()
    try:
        async with db.transaction() as s:
            s.add(
                Run(id="r1", kind="execution", status="running", created_at_ms=0, updated_at_ms=0)
            )
        published: list[str] = []
        async with bus.subscribe(log_topic("r1")) as queue:
            writer = LogWriter(db, bus, "r1", Redactor([]))
            for i in range(FLUSH_LINES * 3 + 7):
                await writer.write(f"line {i}")
            await writer.close()
            while not queue.empty():
                event = queue.get_nowait()
                assert [r["seq"] for r in event["lines"]] == list(
                    range(event["first_seq"], event["last_seq"] + 1)
                )
                published += event["text"].split("\n")
        expected = [f"line {i}" for i in range(FLUSH_LINES * 3 + 7)]
        assert published == expected
        async with db.reading() as s:
            lines = list((await s.execute(select(LogLine.line).order_by(LogLine.seq))).scalars())
        assert lines == expected
    finally:
        await db.dispose()
