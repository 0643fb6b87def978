"""The running app's output as server-sent `logs` events (`GET .../logs/stream?source=runtime`),
and the end of every log stream when the server shuts down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from fastapi import Request

from shipyard.context import AppContext
from shipyard.engine import app_output


def _frame(batch: app_output.Batch) -> bytes:
    # No event id: output cannot be resumed from a position, a reconnect starts with a tail.
    data = orjson.dumps(
        {"deployment_id": batch.deployment_id, "logs": "\n".join(batch.lines), "reset": batch.reset}
    )
    return b"event: logs\ndata: %s\n\n" % data


async def runtime_events(
    ctx: AppContext, app_id: str, tail: int, request: Request
) -> AsyncIterator[bytes]:
    batches = app_output.follow(
        ctx.database, ctx.keyring, ctx.runtimes(), app_id, tail=tail, closing=ctx.closing
    )
    try:
        async for batch in batches:
            if batch.lines or batch.reset:
                yield _frame(batch)
            else:
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
    finally:
        await batches.aclose()


async def until_closing(
    events: AsyncIterator[bytes], closing: asyncio.Event
) -> AsyncIterator[bytes]:
    """End the stream when the server begins to shut down: it waits for open responses."""
    closed = asyncio.ensure_future(closing.wait())
    following: asyncio.Future[bytes] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(events))
            await asyncio.wait({following, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            following = None
            yield item
    finally:
        closed.cancel()
        if following is not None and not following.done():
            # The generator is mid-step in that task: it must stop before it can be closed.
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await following
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
