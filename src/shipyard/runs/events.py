"""Execution updates: stored with the transition they describe, published once committed, and
replayed to late subscribers (the WebSocket) so every transition reaches them in order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.clock import ms_to_datetime, now_ms
from shipyard.events.bus import EventBus, run_topic
from shipyard.models import RunEvent

STATUS_NAMES = {"succeeded": "completed"}


async def record(
    session: AsyncSession,
    run_id: str,
    status: str,
    stage: str | None = None,
    step: str | None = None,
    *,
    kind: str = "execution_update",
) -> dict[str, Any]:
    """Store the update in the caller's transaction; publish it with ``publish`` after commit."""
    now = now_ms()
    payload = {
        "type": kind,
        "data": {
            "execution_id": run_id,
            "status": STATUS_NAMES.get(status, status),
            "stage": stage,
            "step": step,
            "timestamp": ms_to_datetime(now)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        },
    }
    row = RunEvent(run_id=run_id, at_ms=now, payload=payload)
    session.add(row)
    await session.flush()
    return {**payload, "seq": row.id}


def publish(bus: EventBus, run_id: str, events: list[dict[str, Any]]) -> None:
    for event in events:
        bus.publish(run_topic(run_id), event)


async def replay(session: AsyncSession, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.id > after_seq)
        .order_by(RunEvent.id)
    )
    return [{**r.payload, "seq": r.id} for r in rows.scalars()]
