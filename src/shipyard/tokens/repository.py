"""Queries on API tokens."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import ApiToken, User


async def get(session: AsyncSession, token_id: str) -> ApiToken | None:
    return await session.get(ApiToken, token_id)


# Execution option on statements that change nothing authentication depends on (the last-use
# time), so the credential cache (credential_cache.py) is not emptied by them.
KEEPS_CREDENTIALS = "shipyard_keeps_credentials"


class TokenCredential(NamedTuple):
    """What authenticating a request needs of a token and its user (NULL user: the root token)."""

    id: str
    user_id: str | None
    scopes: str
    app_id: str | None
    expires_at_ms: int | None
    revoked_at_ms: int | None
    last_used_at_ms: int | None
    role: str | None
    email: str | None


# Plain columns rather than two ORM objects: this runs on every request.
_CREDENTIAL = select(
    ApiToken.id,
    ApiToken.user_id,
    ApiToken.scopes,
    ApiToken.app_id,
    ApiToken.expires_at_ms,
    ApiToken.revoked_at_ms,
    ApiToken.last_used_at_ms,
    User.role,
    User.email,
).outerjoin(User, User.id == ApiToken.user_id)


async def find_by_hash(session: AsyncSession, secret_hash: str) -> TokenCredential | None:
    connection = await session.connection()  # Core execution: no ORM result machinery needed
    row = (await connection.execute(_CREDENTIAL.where(ApiToken.secret_hash == secret_hash))).first()
    return None if row is None else TokenCredential._make(row)


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
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at_ms=at_ms),
        execution_options={KEEPS_CREDENTIALS: True},
    )
