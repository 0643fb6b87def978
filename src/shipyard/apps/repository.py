"""Queries on apps."""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shipyard.auth.principal import Principal
from shipyard.models import App


def visible_to(principal: Principal) -> Select[App]:
    query = select(App)
    if principal.app_id is not None:
        query = query.where(App.id == principal.app_id)
    if not principal.is_admin:
        query = query.where(App.owner_id == principal.user_id)
    return query


JsonShape = Callable[[str], ColumnElement[str]]


@functools.cache
def _listing(dialect: str, shape: JsonShape, by_app: bool, owner: str) -> Select[str]:
    """The listing statement, built once per kind of caller (values are bound at execution)."""
    query = select(shape(dialect)).order_by(App.id)
    if by_app:
        query = query.where(App.id == bindparam("app_id"))
    if owner == "user":
        query = query.where(App.owner_id == bindparam("owner_id"))
    elif owner == "nobody":
        query = query.where(App.owner_id.is_(None))
    return query


async def list_visible_json(
    session: AsyncSession, principal: Principal, shape: JsonShape
) -> list[str]:
    """The apps the principal may see (as ``visible_to``), each as the JSON text that
    ``shape(dialect)`` builds in SQL."""
    connection = await session.connection()
    owner = "any" if principal.is_admin else "user" if principal.user_id else "nobody"
    query = _listing(connection.dialect.name, shape, principal.app_id is not None, owner)
    values = {"app_id": principal.app_id, "owner_id": principal.user_id}
    return list((await connection.execute(query, values)).scalars().all())


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
