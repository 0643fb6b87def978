"""Rules for pipeline executions: start (steps laid out, job queued), read, cancel, logs."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.engine import jobs
from shipyard.engine.states import CANCELLED, FINISHED, QUEUED, move_run, move_step
from shipyard.env.service import check_key
from shipyard.errors import FieldError, Invalid, NotFound
from shipyard.events.bus import EventBus, run_topic
from shipyard.ids import is_uuid, new_id
from shipyard.logs import repository as logs_repository
from shipyard.models import LogLine, Pipeline, Run, RunStep
from shipyard.pipelines import service as pipelines_service
from shipyard.pipelines.definition import TRIGGERS
from shipyard.runs import events as run_events

EXECUTION_JOB = "execution"
SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$")


def _check_start(trigger: str, branch: str | None, commit_sha: str | None, variables: Any) -> None:
    problems = []
    if trigger not in TRIGGERS:
        problems.append(FieldError("trigger", f"must be one of {', '.join(TRIGGERS)}"))
    if branch is not None and not BRANCH_RE.match(branch):
        problems.append(FieldError("branch", "is not a valid branch name"))
    if commit_sha is not None and not SHA_RE.match(commit_sha):
        problems.append(FieldError("commit_sha", "must be a hexadecimal commit id"))
    if not isinstance(variables, dict):
        problems.append(FieldError("variables", "must be an object of NAME: value"))
    else:
        problems += [p for k in variables if (p := check_key(str(k), f"variables.{k}"))]
    if problems:
        raise Invalid("Invalid execution request", problems)


async def start_execution(
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    *,
    trigger: str = "manual",
    branch: str | None = None,
    commit_sha: str | None = None,
    variables: dict[str, Any] | None = None,
) -> Run:
    """Queue an execution: its steps exist (queued) at once, the engine picks it up."""
    pipeline, workspace = await pipelines_service.get_pipeline(session, principal, pipeline_id)
    variables = {} if variables is None else variables
    _check_start(trigger, branch, commit_sha, variables)
    return await queue_execution(
        session,
        pipeline,
        owner_id=workspace.owner_id,
        trigger=trigger,
        branch=branch or workspace.branch,
        commit_sha=commit_sha,
        variables={k: str(v) for k, v in variables.items()},
    )


async def queue_execution(
    session: AsyncSession,
    pipeline: Pipeline,
    *,
    owner_id: str | None,
    trigger: str,
    branch: str,
    commit_sha: str | None,
    variables: dict[str, str],
) -> Run:
    now = now_ms()
    run = Run(
        id=new_id(),
        kind="execution",
        status=QUEUED,
        owner_id=owner_id,
        pipeline_id=pipeline.id,
        trigger=trigger,
        branch=branch,
        commit_sha=commit_sha,
        variables=variables,
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(run)
    await session.flush()
    position = 0
    for stage in pipeline.stages:
        for step in stage["steps"]:
            session.add(
                RunStep(
                    id=new_id(),
                    run_id=run.id,
                    stage=stage["name"],
                    name=step["name"],
                    position=position,
                    status=QUEUED,
                )
            )
            position += 1
    await jobs.enqueue(session, EXECUTION_JOB, {"run_id": run.id}, max_attempts=2)
    await session.flush()
    return run


async def get_execution(
    session: AsyncSession, principal: Principal, run_id: str
) -> tuple[Run, list[RunStep]]:
    run = await session.get(Run, run_id) if is_uuid(run_id) else None
    if run is None or run.kind != "execution" or run.pipeline_id is None:
        raise NotFound("execution not found")
    try:
        await pipelines_service.get_pipeline(session, principal, run.pipeline_id)
    except NotFound:
        raise NotFound("execution not found") from None
    return run, await steps_of(session, run.id)


async def steps_of(session: AsyncSession, run_id: str) -> list[RunStep]:
    rows = await session.execute(
        select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.position)
    )
    return list(rows.scalars())


async def request_cancel(
    session: AsyncSession, principal: Principal, run_id: str
) -> tuple[Run, list[dict[str, Any]]]:
    """A queued execution is cancelled at once; a running one is told to stop (the runner kills
    its processes and records the cancellation). Publish the returned events after commit."""
    run, steps = await get_execution(session, principal, run_id)
    if run.status in FINISHED:
        return run, []
    run.cancel_requested_at_ms = run.cancel_requested_at_ms or now_ms()
    run.cancelled_by = principal.user_id or principal.token_id or "root"
    events = []
    if run.status == QUEUED:
        for step in steps:
            if step.status == QUEUED:
                move_step(step, CANCELLED, message="cancelled before it started")
                events.append(
                    await run_events.record(session, run.id, CANCELLED, step.stage, step.name)
                )
        move_run(run, CANCELLED, error=f"cancelled by {run.cancelled_by}")
        events.append(await run_events.record(session, run.id, CANCELLED))
    await session.flush()
    return run, events


def announce_cancel(bus: EventBus, run_id: str, events: list[dict[str, Any]]) -> None:
    """After the cancel is committed: tell subscribers, and the runner (in this process) to stop."""
    run_events.publish(bus, run_id, events)
    bus.publish(run_topic(run_id), {"type": "cancel"})


async def step_logs(
    session: AsyncSession,
    principal: Principal,
    run_id: str,
    stage: str,
    step_name: str,
    *,
    tail: int | None,
    after_seq: int,
    limit: int,
) -> tuple[Run, RunStep, list[LogLine], bool]:
    """Lines of one step: the last ``tail`` lines or those after a cursor, and if more exist."""
    run, steps = await get_execution(session, principal, run_id)
    step = next((s for s in steps if s.stage == stage and s.name == step_name), None)
    if step is None:
        raise NotFound(f"the execution has no step {stage}/{step_name}")
    if tail is not None:
        lines = await logs_repository.tail(session, run.id, tail, step_id=step.id)
        total = await logs_repository.count(session, run.id, step_id=step.id)
        return run, step, lines, total > len(lines)
    lines = await logs_repository.read_after(session, run.id, after_seq, limit + 1, step_id=step.id)
    return run, step, lines[:limit], len(lines) > limit


async def cancel_requested(session: AsyncSession, run_id: str) -> bool:
    return bool(await session.scalar(select(Run.cancel_requested_at_ms).where(Run.id == run_id)))


async def step_lines_after(
    session: AsyncSession, run_id: str, step_id: str, after_seq: int
) -> tuple[list[LogLine], str]:
    """New lines of a step since a cursor, and the step's status (for following a live log)."""
    lines = await logs_repository.read_after(session, run_id, after_seq, 10_000, step_id=step_id)
    step = await session.get(RunStep, step_id)
    return lines, step.status if step else CANCELLED
