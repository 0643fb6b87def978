"""Deployments: queue, list, logs, cancel, rollback, and the live SSE log stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from shipyard.api.deps import Ctx, DbSession, Deployer, Reader
from shipyard.api.v1 import V1, runtime_logs
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.deployments import service as deployments_service
from shipyard.engine.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from shipyard.events.bus import app_topic
from shipyard.logs.follow import follow
from shipyard.models import Run, RunStep

router = APIRouter(prefix=f"{V1}/apps/{{app_id}}", tags=["deployments"], responses=ERRORS)
STATUS: dict[str, w.DeploymentStatus] = {
    QUEUED: "queued",
    RUNNING: "deploying",
    SUCCEEDED: "healthy",
    FAILED: "failed",
    CANCELLED: "failed",
}
KEEPALIVE_SECONDS = 15.0
NEWER_CHECK_SECONDS = 1.0


def _accepted(run: Run) -> w.CreateDeploymentAccepted:
    return w.CreateDeploymentAccepted(
        deployment_id=run.id, status=STATUS[run.status], queued_at_unix_ms=run.created_at_ms
    )


def _deployment(run: Run, steps: list[RunStep] | None = None) -> w.Deployment:
    params = run.params or {}
    return w.Deployment(
        id=run.id,
        app_id=run.app_id or "",
        source_ref=params.get("source_ref"),
        image_ref=params.get("image_ref"),
        commit_sha=run.commit_sha or params.get("commit_sha"),
        status=STATUS[run.status],
        last_error=run.error,
        created_at_unix_ms=run.created_at_ms,
        updated_at_unix_ms=run.updated_at_ms,
        trigger=run.trigger,
        steps=None
        if steps is None
        else [
            w.DeploymentStep(
                name=s.name,
                status=s.status,
                message=s.message,
                started_at_unix_ms=s.started_at_ms,
                finished_at_unix_ms=s.finished_at_ms,
            )
            for s in steps
        ],
    )


@router.post(
    "/deployments",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.CreateDeploymentAccepted,
    operation_id="createDeployment",
)
async def create_deployment(
    app_id: str, body: w.CreateDeploymentRequest, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.CreateDeploymentAccepted:
    """Queue a deployment; the same request while one is queued or running returns that one."""
    run, _ = await deployments_service.request_deployment(
        session,
        principal,
        app_id,
        source_ref=body.source_ref,
        image_ref=body.image_ref,
        commit_sha=body.commit_sha,
        force_rebuild=bool(body.force_rebuild),
    )
    await session.commit()
    ctx.wake_engine()
    return _accepted(run)


@router.get("/deployments", response_model=w.DeploymentListResponse, operation_id="listDeployments")
async def list_deployments(
    app_id: str, principal: Reader, session: DbSession
) -> w.DeploymentListResponse:
    """The app's deployments, newest first."""
    runs = await deployments_service.list_deployments(session, principal, app_id)
    return w.DeploymentListResponse(items=[_deployment(r) for r in runs])


@router.get(
    "/deployments/{deployment_id}", response_model=w.Deployment, operation_id="getDeployment"
)
async def get_deployment(
    app_id: str, deployment_id: str, principal: Reader, session: DbSession
) -> w.Deployment:
    """One deployment with the status of each of its steps."""
    run = await deployments_service.get_deployment(session, principal, app_id, deployment_id)
    return _deployment(run, await deployments_service.steps(session, run.id))


@router.get(
    "/deployments/{deployment_id}/logs",
    response_model=w.DeploymentLogsResponse,
    operation_id="getDeploymentLogs",
)
async def deployment_logs(
    app_id: str,
    deployment_id: str,
    principal: Reader,
    session: DbSession,
    after: Annotated[int, Query(ge=0, description="Only lines after this sequence number.")] = 0,
    tail: Annotated[
        int | None, Query(ge=1, le=100_000, description="Only the last N lines.")
    ] = None,
) -> w.DeploymentLogsResponse:
    """A deployment's log, as text."""
    run, lines = await deployments_service.deployment_logs(
        session, principal, app_id, deployment_id, after=after, tail=tail
    )
    return w.DeploymentLogsResponse(
        deployment_id=run.id, logs="\n".join(line.line for line in lines)
    )


@router.post(
    "/deployments/{deployment_id}/cancel",
    response_model=w.Deployment,
    operation_id="cancelDeployment",
)
async def cancel_deployment(
    app_id: str, deployment_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.Deployment:
    """Cancel a queued or running deployment; the live release keeps serving."""
    run = await deployments_service.request_cancel(session, principal, app_id, deployment_id)
    await session.commit()
    deployments_service.announce_cancel(ctx.bus, run.id)
    return _deployment(run)


@router.post(
    "/rollback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.CreateDeploymentAccepted,
    operation_id="rollbackDeployment",
)
async def rollback(
    app_id: str,
    principal: Deployer,
    session: DbSession,
    ctx: Ctx,
    body: Annotated[w.RollbackRequest | None, Body()] = None,
) -> w.CreateDeploymentAccepted:
    """Make the previous healthy release (or a given deployment's) live again, without a rebuild."""
    run = await deployments_service.rollback(
        session, principal, app_id, body.deployment_id if body else None
    )
    await session.commit()
    ctx.wake_engine()
    return _accepted(run)


@router.get("/logs/stream", operation_id="streamAppLogs", response_class=StreamingResponse)
async def stream_logs(
    app_id: str,
    request: Request,
    principal: Reader,
    session: DbSession,
    ctx: Ctx,
    last_event_id: Annotated[str | None, Header()] = None,
    source: Annotated[
        Literal["deployment", "runtime"],
        Query(
            description="`deployment`: the latest deployment's log; `runtime`: what the "
            "live release's instances print"
        ),
    ] = "deployment",
    tail: Annotated[
        int, Query(ge=0, le=10_000, description="runtime: start with this many earlier lines")
    ] = 100,
) -> StreamingResponse:
    """Server-sent `logs` events of the app's latest deployment (resumes after Last-Event-ID),
    or with `source=runtime` of what the running app prints."""
    await deployments_service.list_deployments(session, principal, app_id)  # authorizes
    events = (
        runtime_logs.runtime_events(ctx, app_id, tail, request)
        if source == "runtime"
        else _events(ctx, principal, app_id, last_event_id, request)
    )
    return StreamingResponse(
        runtime_logs.until_closing(events, ctx.closing),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(deployment_id: str | None, seq: int, logs: str, reset: bool) -> bytes:
    data = orjson.dumps({"deployment_id": deployment_id, "logs": logs, "reset": reset})
    return b"id: %s:%d\nevent: logs\ndata: %s\n\n" % ((deployment_id or "-").encode(), seq, data)


async def _events(
    ctx: Ctx, principal: object, app_id: str, last_event_id: str | None, request: Request
) -> AsyncIterator[bytes]:
    current, cursor = None, 0
    if last_event_id and ":" in last_event_id:
        current, _, seq = last_event_id.partition(":")
        cursor = int(seq) if seq.isdigit() else 0
    first = True
    while not await request.is_disconnected():
        async with ctx.database.reading() as session:
            latest = await deployments_service.latest_deployment(session, app_id)
        if latest is None:
            if first:
                yield _frame(None, 0, "", True)
                first = False
            # Woken when the app's first deployment starts; the timeout covers any other path.
            async with ctx.bus.subscribe(app_topic(app_id)) as wake:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.get(), NEWER_CHECK_SECONDS)
            continue
        reset = latest.id != current
        if reset:
            cursor = 0
        current = latest.id
        wake_on = (app_topic(app_id),)
        async with follow(ctx.database, ctx.bus, current, cursor, wake_on) as follower:
            text = await follower.next(0)
            if text is not None or reset or first:
                cursor = follower.cursor
                yield _frame(current, cursor, text or "", reset)
                first = False
            # Batches go out as published (no query per batch); when a deployment of the app
            # starts, or after a quiet second, look for a newer deployment; after
            # KEEPALIVE_SECONDS of quiet, send a keep-alive.
            clock = asyncio.get_running_loop().time
            sent = clock()
            while not await request.is_disconnected():
                text = await follower.next(NEWER_CHECK_SECONDS)
                if text is not None:
                    cursor, sent = follower.cursor, clock()
                    yield _frame(current, cursor, text, False)
                    continue
                async with ctx.database.reading() as session:
                    latest = await deployments_service.latest_deployment(session, app_id)
                if latest is not None and latest.id != current:
                    break
                if clock() - sent >= KEEPALIVE_SECONDS:
                    sent = clock()
                    yield b": keep-alive\n\n"
