"""Rules for deployments: one active per app, idempotent requests, rollback targets, cancel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import service as apps_service
from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.engine import jobs
from shipyard.engine.states import CANCELLED, FINISHED, QUEUED, RUNNING, move_run, move_step
from shipyard.errors import Conflict, FieldError, Invalid, NotFound
from shipyard.events.bus import EventBus, run_topic
from shipyard.ids import is_uuid, new_id
from shipyard.logs import repository as logs_repository
from shipyard.models import App, Release, Run, RunStep

DEPLOYMENT_JOB = "deployment"
BUILD_STEPS = (
    "fetch",
    "build",
    "release",
    "start",
    "health",
    "switch",
    "drain",
    "stop_old",
    "prune",
)
ROLLBACK_STEPS = ("start", "health", "switch", "drain", "stop_old")


def _params(
    source_ref: str | None, image_ref: str | None, commit_sha: str | None, force_rebuild: bool
) -> dict[str, Any]:
    return {
        "source_ref": source_ref,
        "image_ref": image_ref,
        "commit_sha": commit_sha,
        "force_rebuild": force_rebuild,
    }


async def active_runs(session: AsyncSession, app_id: str) -> list[Run]:
    rows = await session.execute(
        select(Run)
        .where(Run.app_id == app_id, Run.kind == "deployment", Run.status.in_((QUEUED, RUNNING)))
        .order_by(Run.created_at_ms, Run.id)
    )
    return list(rows.scalars())


async def create_run(
    session: AsyncSession,
    app: App,
    principal: Principal | None,
    params: dict[str, Any],
    steps: tuple[str, ...],
    trigger: str,
    job: str = DEPLOYMENT_JOB,
) -> Run:
    """A queued deployment run with its steps, and the job that will run it."""
    now = now_ms()
    run = Run(
        id=new_id(),
        kind="deployment",
        status=QUEUED,
        owner_id=app.owner_id,
        app_id=app.id,
        trigger=trigger,
        commit_sha=params.get("commit_sha"),
        branch=params.get("source_ref"),
        params=params,
        created_at_ms=now,
        updated_at_ms=now,
        cancelled_by=None,
    )
    session.add(run)
    await session.flush()
    for position, name in enumerate(steps):
        session.add(
            RunStep(
                id=new_id(), run_id=run.id, stage=None, name=name, position=position, status=QUEUED
            )
        )
    await jobs.enqueue(session, job, {"run_id": run.id}, max_attempts=2)
    await session.flush()
    return run


async def request_deployment(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    *,
    source_ref: str | None = None,
    image_ref: str | None = None,
    commit_sha: str | None = None,
    force_rebuild: bool = False,
    trigger: str = "api",
) -> tuple[Run, bool]:
    """Queue a deployment; an identical one already queued or running is returned instead
    (the flag says whether a new one was made). A newer request waits for the running one."""
    app = await apps_service.get_app(session, principal, app_id)
    if app.source_type is None and image_ref is None:
        raise Invalid(
            "the app has no source: set its repository, image_ref or compose file first",
            [FieldError("source_ref", "the app has no source to deploy")],
        )
    params = _params(source_ref, image_ref, commit_sha, force_rebuild)
    for run in await active_runs(session, app.id):
        if run.params == params:
            return run, False
    return await create_run(session, app, principal, params, BUILD_STEPS, trigger), True


async def list_deployments(session: AsyncSession, principal: Principal, app_id: str) -> list[Run]:
    app = await apps_service.get_app(session, principal, app_id)
    rows = await session.execute(
        select(Run)
        .where(Run.app_id == app.id, Run.kind == "deployment")
        .order_by(Run.created_at_ms.desc(), Run.id.desc())
    )
    return list(rows.scalars())


async def get_deployment(
    session: AsyncSession, principal: Principal, app_id: str, deployment_id: str
) -> Run:
    app = await apps_service.get_app(session, principal, app_id)
    run = await session.get(Run, deployment_id) if is_uuid(deployment_id) else None
    if run is None or run.app_id != app.id or run.kind != "deployment":
        raise NotFound("deployment not found")
    return run


async def deployment_logs(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    deployment_id: str,
    *,
    after: int,
    tail: int | None,
) -> tuple[Run, list[Any]]:
    run = await get_deployment(session, principal, app_id, deployment_id)
    if tail is not None:
        return run, await logs_repository.tail(session, run.id, tail)
    return run, await logs_repository.read_after(session, run.id, after, 100_000)


async def rollback(
    session: AsyncSession, principal: Principal, app_id: str, deployment_id: str | None = None
) -> Run:
    """Make an earlier release live again, without rebuilding: the given deployment's release, or
    the newest release before the live one."""
    app = await apps_service.get_app(session, principal, app_id)
    releases = list(
        (
            await session.execute(
                select(Release)
                .where(Release.app_id == app.id, Release.status.in_(("live", "retired")))
                .order_by(Release.created_at_ms.desc(), Release.id.desc())
            )
        ).scalars()
    )
    if deployment_id is not None:
        target = next((r for r in releases if r.deployment_id == deployment_id), None)
        if target is None:
            raise NotFound("that deployment has no release that can be rolled back to")
    else:
        older = [r for r in releases if r.id != app.live_release_id]
        if not older:
            raise Conflict(
                "there is no earlier healthy release to roll back to", code="no_rollback_target"
            )
        target = older[0]
    if target.id == app.live_release_id:
        raise Conflict("that release is already live", code="already_live")
    params = {"rollback_release_id": target.id, "commit_sha": target.commit_sha}
    return await create_run(session, app, principal, params, ROLLBACK_STEPS, "rollback")


async def request_cancel(
    session: AsyncSession, principal: Principal, app_id: str, deployment_id: str
) -> Run:
    run = await get_deployment(session, principal, app_id, deployment_id)
    if run.status in FINISHED:
        return run
    run.cancel_requested_at_ms = run.cancel_requested_at_ms or now_ms()
    run.cancelled_by = principal.user_id or principal.token_id or "root"
    if run.status == QUEUED:
        for step in (
            await session.execute(select(RunStep).where(RunStep.run_id == run.id))
        ).scalars():
            if step.status == QUEUED:
                move_step(step, CANCELLED)
        move_run(run, CANCELLED, error=f"cancelled by {run.cancelled_by}")
    await session.flush()
    return run


def announce_cancel(bus: EventBus, run_id: str) -> None:
    """After the cancel is committed: tell the runner (in this process) to stop now."""
    bus.publish(run_topic(run_id), {"type": "cancel"})


async def steps(session: AsyncSession, run_id: str) -> list[RunStep]:
    rows = await session.execute(
        select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.position)
    )
    return list(rows.scalars())


async def latest_deployment(session: AsyncSession, app_id: str) -> Run | None:
    return await session.scalar(
        select(Run)
        .where(Run.app_id == app_id, Run.kind == "deployment")
        .order_by(Run.created_at_ms.desc(), Run.id.desc())
        .limit(1)
    )
