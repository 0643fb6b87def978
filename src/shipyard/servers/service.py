"""Rules for servers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.clock import now_ms
from shipyard.ids import new_id
from shipyard.models import Server

LOCAL_SERVER_NAME = "local"


async def ensure_local_server(session: AsyncSession) -> Server:
    """The built-in server for this machine; created on first start, runtime chosen at deploy."""
    existing = (
        await session.execute(select(Server).where(Server.name == LOCAL_SERVER_NAME))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    now = now_ms()
    server = Server(
        id=new_id(),
        name=LOCAL_SERVER_NAME,
        kind="local",
        runtime="auto",
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(server)
    await session.flush()
    return server


async def get_server(session: AsyncSession, server_id: str) -> Server | None:
    return await session.get(Server, server_id)


async def local_server_id(session: AsyncSession) -> str:
    return (await ensure_local_server(session)).id
