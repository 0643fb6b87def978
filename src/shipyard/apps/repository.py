"""Queries on apps."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

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


# A named tuple with App's attribute names: reading its fields is a C-level index, where an ORM
# object or a SQLAlchemy Row costs a Python-level lookup per field; listing 100 apps spent most of
# its time there (bench/RESULTS.md).
AppRow = namedtuple("AppRow", [column.key for column in App.__table__.columns])  # type: ignore[misc]


async def list_visible(session: AsyncSession, principal: Principal) -> list[Any]:
    """The apps the principal may see, as AppRow tuples (read-only; attribute names as on App)."""
    query = visible_to(principal).with_only_columns(*App.__table__.columns).order_by(App.id)
    # Core execution on the session's connection: the ORM's result machinery is not needed.
    connection = await session.connection()
    return [AppRow._make(row) for row in await connection.execute(query)]


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
