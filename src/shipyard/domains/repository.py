"""Queries on domains."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import Domain


async def list_for_app(session: AsyncSession, app_id: str) -> list[Domain]:
    rows = await session.execute(
        select(Domain).where(Domain.app_id == app_id).order_by(Domain.hostname)
    )
    return list(rows.scalars())


async def hostname_taken(session: AsyncSession, hostname: str) -> bool:
    return (
        await session.execute(select(Domain.id).where(Domain.hostname == hostname).limit(1))
    ).first() is not None


async def get(session: AsyncSession, domain_id: str) -> Domain | None:
    return await session.get(Domain, domain_id)
