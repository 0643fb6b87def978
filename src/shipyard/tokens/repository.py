"""Queries on API tokens."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import ApiToken, User


async def get(session: AsyncSession, token_id: str) -> ApiToken | None:
    return await session.get(ApiToken, token_id)


async def find_by_hash(
    session: AsyncSession, secret_hash: str
) -> tuple[ApiToken, User | None] | None:
    row = (
        await session.execute(
            select(ApiToken, User)
            .outerjoin(User, User.id == ApiToken.user_id)
            .where(ApiToken.secret_hash == secret_hash)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def list_for(session: AsyncSession, user_id: str | None, *, everyone: bool) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if not everyone:
        query = query.where(
            ApiToken.user_id == user_id if user_id is not None else ApiToken.user_id.is_(None)
        )
    return list((await session.execute(query)).scalars())


async def any_exists(session: AsyncSession) -> bool:
    return (await session.execute(select(ApiToken.id).limit(1))).first() is not None


async def touch(session: AsyncSession, token_id: str, at_ms: int) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at_ms=at_ms)
    )
