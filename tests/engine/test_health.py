"""The health gate's TCP probe against real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shipyard.engine.health import HealthCheck, wait_healthy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHECK = HealthCheck(path=None, interval_seconds=0.1, deadline_seconds=1.0)


async def quiet_log(line: str) -> None:
    return None


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_listening_port_is_healthy(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def wait_for_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    assert await wait_healthy(await serve(wait_for_request), CHECK, quiet_log) is None


async def test_a_port_that_closes_every_connection_at_once_is_not_healthy(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """What Docker's userland proxy does while nothing listens in the container yet."""

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    problem = await wait_healthy(await serve(close_at_once), CHECK, quiet_log)

    assert problem is not None and "closed at once" in problem
