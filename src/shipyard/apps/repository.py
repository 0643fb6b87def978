"""Queries on apps."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.models import App


def visible_to(principal: Principal) -> Select[App]:
    query = select(App)
    if principal.app_id is not None:
        query = query.where(App.id == principal.app_id)
    if not principal.is_admin:
        query = query.where(App.owner_id == principal.user_id)
    return query


async def list_visible(session: AsyncSession, principal: Principal) -> list[App]:
    return list((await session.execute(visible_to(principal).order_by(App.id))).scalars())


async def get(session: AsyncSession, app_id: str) -> App | None:
    return await session.get(App, app_id)


async def name_taken(session: AsyncSession, name: str, *, except_id: str | None = None) -> bool:
    query = select(App.id).where(App.name == name)
    if except_id is not None:
        query = query.where(App.id != except_id)
    return (await session.execute(query.limit(1))).first() is not None


async def any_live(session: AsyncSession) -> bool:
    """Whether any app has a live release (and so needs proxy routes)."""
    found = await session.execute(select(App.id).where(App.live_release_id.is_not(None)).limit(1))
    return found.first() is not None
