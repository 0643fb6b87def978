"""Queries on log lines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import LogLine


async def last_seq(session: AsyncSession, run_id: str) -> int:
    value = await session.scalar(select(func.max(LogLine.seq)).where(LogLine.run_id == run_id))
    return int(value or 0)


async def append(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(LogLine), rows)


async def read_after(
    session: AsyncSession, run_id: str, after_seq: int, limit: int, step_id: str | None = None
) -> list[LogLine]:
    query = select(LogLine).where(LogLine.run_id == run_id, LogLine.seq > after_seq)
    if step_id is not None:
        query = query.where(LogLine.step_id == step_id)
    return list((await session.execute(query.order_by(LogLine.seq).limit(limit))).scalars())


async def tail(
    session: AsyncSession, run_id: str, count: int, step_id: str | None = None
) -> list[LogLine]:
    query = select(LogLine).where(LogLine.run_id == run_id)
    if step_id is not None:
        query = query.where(LogLine.step_id == step_id)
    rows = list((await session.execute(query.order_by(LogLine.seq.desc()).limit(count))).scalars())
    return rows[::-1]


async def count(session: AsyncSession, run_id: str, step_id: str | None = None) -> int:
    query = select(func.count()).select_from(LogLine).where(LogLine.run_id == run_id)
    if step_id is not None:
        query = query.where(LogLine.step_id == step_id)
    return int(await session.scalar(query) or 0)
