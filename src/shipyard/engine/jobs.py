"""The job queue: rows claimed with a lease, kept alive by heartbeats, reclaimed when it lapses.

Claiming selects the oldest due job FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite the write
transaction already holds the database's write lock (BEGIN IMMEDIATE), so the same query is safe.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.clock import now_ms
from shipyard.db.engine import Database
from shipyard.ids import new_id
from shipyard.models import Job

QUEUED, LEASED, DONE, DEAD = "queued", "leased", "done", "dead"


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    max_attempts: int = 3,
    delay_ms: int = 0,
) -> Job:
    """Add a job in the caller's transaction, so it exists exactly when the row needing it does."""
    now = now_ms()
    job = Job(
        id=new_id(),
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
        state=QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        run_after_ms=now + delay_ms,
        created_at_ms=now,
        updated_at_ms=now,
    )
    try:
        async with session.begin_nested():  # a duplicate is expunged with the savepoint
            session.add(job)
            await session.flush()
    except IntegrityError:
        existing = await session.scalar(select(Job).where(Job.dedupe_key == dedupe_key))
        assert existing is not None
        return existing
    return job


async def claim(
    database: Database, owner: str, kinds: list[str], lease_ms: int
) -> ClaimedJob | None:
    """Lease the oldest due job of these kinds, or None."""
    now = now_ms()
    due = and_(Job.state == QUEUED, Job.run_after_ms <= now, Job.kind.in_(kinds))
    # Idle workers poll: look first without the write lock, which API writes would wait for.
    async with database.reading() as session:
        if await session.scalar(select(Job.id).where(due).limit(1)) is None:
            return None
    async with database.transaction() as session:
        job = await session.scalar(
            select(Job)
            .where(due)
            .order_by(Job.run_after_ms, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is None:
            return None
        job.state = LEASED
        job.lease_owner = owner
        job.lease_expires_at_ms = now + lease_ms
        job.attempts += 1
        job.updated_at_ms = now
        return ClaimedJob(job.id, job.kind, dict(job.payload), job.attempts, job.max_attempts)


async def heartbeat(database: Database, job_id: str, owner: str, lease_ms: int) -> bool:
    """Extend the lease; False when the lease was lost (reclaimed by someone else)."""
    async with database.transaction() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == LEASED)
            .values(lease_expires_at_ms=now_ms() + lease_ms, updated_at_ms=now_ms())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(database: Database, job_id: str, owner: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner)
            .values(state=DONE, lease_owner=None, lease_expires_at_ms=None, updated_at_ms=now_ms())
        )


async def retry_or_bury(
    database: Database, job: ClaimedJob, owner: str, error: str, backoff_ms: int
) -> str:
    """After a failed attempt: queue again after a backoff, or mark dead when attempts ran out."""
    state = DEAD if job.attempt >= job.max_attempts else QUEUED
    async with database.transaction() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id, Job.lease_owner == owner)
            .values(
                state=state,
                lease_owner=None,
                lease_expires_at_ms=None,
                last_error=error[-4000:],
                run_after_ms=now_ms() + backoff_ms,
                updated_at_ms=now_ms(),
            )
        )
    return state


async def reclaim_expired(
    database: Database, *, dead_owners: frozenset[str] | set[str] = frozenset()
) -> int:
    """Put jobs whose lease lapsed (or whose owner is known dead) back in the queue."""
    now = now_ms()
    async with database.transaction() as session:
        condition = Job.lease_expires_at_ms < now
        if dead_owners:
            condition = condition | Job.lease_owner.in_(dead_owners)
        result = await session.execute(
            update(Job)
            .where(Job.state == LEASED, condition)
            .values(state=QUEUED, lease_owner=None, lease_expires_at_ms=None, updated_at_ms=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def leased_owners(database: Database) -> set[str]:
    async with database.reading() as session:
        rows = await session.execute(select(Job.lease_owner).where(Job.state == LEASED).distinct())
        return {r[0] for r in rows if r[0]}
