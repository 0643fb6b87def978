"""Queries on app env vars."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import AppEnvVar


async def list_for_app(session: AsyncSession, app_id: str) -> list[AppEnvVar]:
    rows = await session.execute(
        select(AppEnvVar).where(AppEnvVar.app_id == app_id).order_by(AppEnvVar.key)
    )
    return list(rows.scalars())


async def get(session: AsyncSession, app_id: str, key: str) -> AppEnvVar | None:
    return await session.get(AppEnvVar, (app_id, key))


async def delete_one(session: AsyncSession, app_id: str, key: str) -> int:
    result = await session.execute(
        delete(AppEnvVar).where(AppEnvVar.app_id == app_id, AppEnvVar.key == key)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_all(session: AsyncSession) -> list[AppEnvVar]:
    return list((await session.execute(select(AppEnvVar))).scalars())
