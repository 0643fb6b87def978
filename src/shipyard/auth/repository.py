"""Queries on login sessions and password resets."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import LoginSession, PasswordReset, User


async def find_session(session: AsyncSession, secret_hash: str) -> tuple[LoginSession, User] | None:
    row = (
        await session.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.secret_hash == secret_hash)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def get_session(session: AsyncSession, session_id: str) -> LoginSession | None:
    return await session.get(LoginSession, session_id)


async def revoke_sessions_of(session: AsyncSession, user_id: str, at_ms: int) -> None:
    await session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at_ms.is_(None))
        .values(revoked_at_ms=at_ms)
    )


async def find_reset(session: AsyncSession, secret_hash: str) -> PasswordReset | None:
    return (
        await session.execute(select(PasswordReset).where(PasswordReset.secret_hash == secret_hash))
    ).scalar_one_or_none()
