"""until_closing(): a log stream ends when the server starts shutting down, and a stream whose
reader goes away is closed even while it waits for its next event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shipyard.api.v1.runtime_logs import until_closing


async def test_closing_ends_a_stream_that_waits_for_its_next_event() -> None:
    closing = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(3600)
        yield b"never"

    received: list[bytes] = []

    async def read() -> None:
        async for event in until_closing(events(), closing):
            received.append(event)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    closing.set()
    await asyncio.wait_for(reader, 1)
    assert received == [b"first"]


async def test_a_reader_that_goes_away_closes_the_stream() -> None:
    closed = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.sleep(3600)
        finally:
            closed.set()

    async def read() -> None:
        async for _ in until_closing(events(), asyncio.Event()):
            pass

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    reader.cancel()  # what the server does when the client disconnects
    await asyncio.gather(reader, return_exceptions=True)
    assert closed.is_set()


async def test_a_stream_that_ends_ends_the_response() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"only"

    assert [e async for e in until_closing(events(), asyncio.Event())] == [b"only"]
