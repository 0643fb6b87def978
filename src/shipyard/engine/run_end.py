"""Ending a run, shared by every runner: unfinished steps are closed (queued ones skipped on
failure, cancelled otherwise; running ones failed with the reason), the run moves to its final
status, and the updates are stored and then published."""

from __future__ import annotations

from sqlalchemy import select

from shipyard.db.engine import Database
from shipyard.engine.states import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SKIPPED,
    move_run,
    move_step,
)
from shipyard.events.bus import EventBus
from shipyard.models import Run, RunStep
from shipyard.runs import events as run_events


async def end_run(
    database: Database, bus: EventBus, run_id: str, target: str, error: str | None, *, kind: str
) -> None:
    events = []
    async with database.transaction() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        if run.status in FINISHED:
            return
        steps = await session.execute(
            select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.position)
        )
        for step in steps.scalars():
            if step.status not in (QUEUED, RUNNING):
                continue
            queued_to = SKIPPED if target == FAILED else CANCELLED
            to = FAILED if step.status == RUNNING else queued_to
            move_step(step, to, message=error if to == FAILED else None)
            events.append(
                await run_events.record(session, run_id, to, step.stage, step.name, kind=kind)
            )
        move_run(run, target, error=error)
        events.append(await run_events.record(session, run_id, target, kind=kind))
    run_events.publish(bus, run_id, events)
