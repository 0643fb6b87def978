"""Queries on log lines."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import LogLine


async def last_seq(session: AsyncSession, run_id: str) -> int:
    value = await session.scalar(select(func.max(LogLine.seq)).where(LogLine.run_id == run_id))
    return int(value or 0)


async def append(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        # Core's executemany on the table: the ORM's bulk path costs ~7 us more per row, and
        # a build may print tens of thousands of lines a second.
        await session.execute(insert(cast(Table, LogLine.__table__)), rows)


async def read_after(
    session: AsyncSession, run_id: str, after_seq: int, limit: int, step_id: str | None = None
) -> list[LogLine]:
    query = select(LogLine).where(LogLine.run_id == run_id, LogLine.seq > after_seq)
    if step_id is not None:
        query = query.where(LogLine.step_id == step_id)
    return list((await session.execute(query.order_by(LogLine.seq).limit(limit))).scalars())


async def texts_after(
    session: AsyncSession, run_id: str, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """(seq, line) after ``after_seq``: plain rows, no ORM objects (a catch-up may read many)."""
    query = (
        select(LogLine.seq, LogLine.line)
        .where(LogLine.run_id == run_id, LogLine.seq > after_seq)
        .order_by(LogLine.seq)
        .limit(limit)
    )
    return [(seq, line) for seq, line in (await session.execute(query)).all()]


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
