"""RustCI endpoints under /v1, at the paths and in the shapes its documentation gives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse

from shipyard import __version__
from shipyard.api.deps import Ctx, DbSession, anonymous_limit, client_ip, rate_limit
from shipyard.auth import github_oauth
from shipyard.auth import service as auth_service
from shipyard.dialects.rustci import schemas as w
from shipyard.dialects.rustci import translate as t
from shipyard.dialects.rustci.deps import Admin, Deployer, Reader
from shipyard.drivers.github import GithubOAuth
from shipyard.engine.states import FINISHED
from shipyard.errors import Unauthorized, Unavailable
from shipyard.events.bus import log_topic
from shipyard.pagination import PageRequest
from shipyard.pipelines import from_repository
from shipyard.pipelines import service as pipelines_service
from shipyard.runs import service as runs_service
from shipyard.runs.triggers import handle_github_webhook
from shipyard.users import service as users_service
from shipyard.workspaces import service as workspaces_service

router = APIRouter(prefix="/v1", tags=["rustci"])
STARTED = time.monotonic()
CANCEL_WAIT_SECONDS = 15.0

Page = Annotated[int, Query(description="Page number, from 1.")]
Limit = Annotated[int, Query(description="Items per page, 1-100.")]


def _uptime() -> str:
    seconds = int(time.monotonic() - STARTED)
    return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


@router.get("/health")
async def health() -> dict[str, Any]:
    """RustCI health: status, time, version and uptime."""
    return {
        "status": "healthy",
        "timestamp": t.iso(int(time.time() * 1000)),
        "version": __version__,
        "uptime": _uptime(),
    }


# --- auth -----------------------------------------------------------------------------------


def _callback_url(request: Request, ctx: Ctx) -> str:
    base = ctx.settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + "/v1/auth/github/callback"


@router.get("/auth/github")
async def github_login(request: Request, ctx: Ctx) -> RedirectResponse:
    """Start GitHub sign-in: redirects to GitHub's authorize page."""
    s = ctx.settings
    url = github_oauth.authorize_url(
        s.github_authorize_url, s.github_client_id, _callback_url(request, ctx), ctx.signing_key
    )
    return RedirectResponse(url, status_code=status.HTTP_302_FOUND)


@router.get("/auth/github/callback")
async def github_callback(
    request: Request, ctx: Ctx, code: str = "", state: str = ""
) -> dict[str, Any]:
    """Finish GitHub sign-in: creates or links the user and returns a JWT."""
    await anonymous_limit(request)
    s = ctx.settings
    if not (s.github_client_id and s.github_client_secret):
        raise Unavailable("GitHub sign-in is not configured")
    if not code:
        raise Unauthorized("GitHub did not send an authorization code", code="oauth_failed")
    oauth = GithubOAuth(
        s.github_client_id, s.github_client_secret, s.github_token_url, s.github_api_url
    )
    # A GET that writes (the user, the token): it owns a write transaction of its own.
    async with ctx.database.transaction() as session:
        raw, _, user = await github_oauth.complete(
            session,
            oauth,
            code=code,
            state=state,
            redirect_uri=_callback_url(request, ctx),
            signing_key=ctx.signing_key,
            ttl_seconds=s.jwt_ttl_seconds,
        )
    return {
        "token": raw,
        "token_type": "Bearer",
        "expires_in": s.jwt_ttl_seconds,
        "user": t.user(user),
    }


@router.post("/auth/token")
async def password_token(
    body: w.TokenRequest, request: Request, session: DbSession, ctx: Ctx
) -> dict[str, Any]:
    """Exchange email and password for a JWT (for accounts without GitHub)."""
    await anonymous_limit(request)
    raw, user = await auth_service.login_jwt(
        session,
        email=body.email,
        password=body.password,
        signing_key=ctx.signing_key,
        ttl_seconds=ctx.settings.jwt_ttl_seconds,
    )
    return {
        "token": raw,
        "token_type": "Bearer",
        "expires_in": ctx.settings.jwt_ttl_seconds,
        "user": t.user(user),
    }


# --- users ----------------------------------------------------------------------------------


@router.get("/api/users/me")
async def get_me(principal: Reader, session: DbSession) -> dict[str, Any]:
    """The current user."""
    user, _ = await auth_service.whoami(session, principal)
    return t.user(user)


@router.put("/api/users/me")
async def update_me(
    body: w.UpdateMeRequest, principal: Admin, session: DbSession
) -> dict[str, Any]:
    """Update the current user's email."""
    user, _ = await auth_service.whoami(session, principal)
    if body.email is not None:
        user = await users_service.update_email(session, user.id, body.email)
    return t.user(user)


# --- workspaces -----------------------------------------------------------------------------


@router.get("/api/workspaces")
async def list_workspaces(
    principal: Reader,
    session: DbSession,
    page: Page = 1,
    limit: Limit = 20,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
) -> dict[str, Any]:
    """Your workspaces, paginated, optionally by status (active, inactive)."""
    result = await workspaces_service.list_workspaces(
        session, principal, PageRequest(page, limit), status_filter
    )
    return {
        "workspaces": [t.workspace(x) for x in result.items],
        "pagination": t.pagination(result),
    }


@router.post("/api/workspaces", status_code=status.HTTP_201_CREATED)
async def create_workspace(
    body: w.CreateWorkspaceRequest, principal: Admin, session: DbSession, ctx: Ctx
) -> dict[str, Any]:
    """Create a workspace for a repository and branch."""
    workspace = await workspaces_service.create_workspace(
        session,
        principal,
        ctx.keyring,
        name=body.name,
        repository_url=body.repository_url,
        branch=body.branch,
        webhook_secret=body.webhook_secret,
    )
    return t.workspace(workspace)


@router.get("/api/workspaces/{workspace_id}")
async def get_workspace(workspace_id: str, principal: Reader, session: DbSession) -> dict[str, Any]:
    """A workspace with its pipeline count and last execution time."""
    workspace = await workspaces_service.get_workspace(session, principal, workspace_id)
    count, last = await workspaces_service.summary(session, workspace.id)
    return {**t.workspace(workspace), "pipelines_count": count, "last_execution": t.iso(last)}


@router.put("/api/workspaces/{workspace_id}")
async def update_workspace(
    workspace_id: str,
    body: w.UpdateWorkspaceRequest,
    principal: Admin,
    session: DbSession,
    ctx: Ctx,
) -> dict[str, Any]:
    """Change a workspace's name, repository, branch, status or webhook secret."""
    changes = body.model_dump(exclude_unset=True)
    workspace = await workspaces_service.update_workspace(
        session, principal, ctx.keyring, workspace_id, changes
    )
    return t.workspace(workspace)


@router.delete("/api/workspaces/{workspace_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_workspace(workspace_id: str, principal: Admin, session: DbSession) -> Response:
    """Delete a workspace with its pipelines and executions."""
    await workspaces_service.delete_workspace(session, principal, workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/workspaces/{workspace_id}/sync")
async def sync_pipelines(
    workspace_id: str, principal: Admin, session: DbSession, ctx: Ctx
) -> dict[str, Any]:
    """Re-read pipelines from the repository (.shipyard/pipelines/*.yaml, shipyard.yaml)."""
    workspace = await workspaces_service.get_workspace(session, principal, workspace_id)
    pipelines = await from_repository.refresh(session, workspace, ctx.settings.resolved_data_dir)
    return {"workspace_id": workspace.id, "pipelines": [t.pipeline(p) for p in pipelines]}


@router.put("/api/workspaces/{workspace_id}/secrets")
async def set_secrets(
    workspace_id: str, body: w.SecretsRequest, principal: Admin, session: DbSession, ctx: Ctx
) -> dict[str, Any]:
    """Set CI secrets (encrypted; given to steps as env vars and redacted from logs)."""
    names = await workspaces_service.set_secrets(
        session, principal, ctx.keyring, workspace_id, body.secrets
    )
    return {"workspace_id": workspace_id, "secrets": names}


# --- pipelines ------------------------------------------------------------------------------


@router.get("/api/workspaces/{workspace_id}/pipelines")
async def list_pipelines(
    workspace_id: str, principal: Reader, session: DbSession, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """The workspace's pipelines, paginated."""
    result = await pipelines_service.list_pipelines(
        session, principal, workspace_id, PageRequest(page, limit)
    )
    return {"pipelines": [t.pipeline(p) for p in result.items], "pagination": t.pagination(result)}


@router.post("/api/workspaces/{workspace_id}/pipelines", status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    workspace_id: str, body: w.CreatePipelineRequest, principal: Admin, session: DbSession
) -> dict[str, Any]:
    """Create a pipeline: stages (a graph by depends_on) of steps, variables, triggers."""
    pipeline = await pipelines_service.create_pipeline(
        session,
        principal,
        workspace_id,
        name=body.name,
        stages=body.stages,
        variables=body.variables,
        triggers=body.triggers,
    )
    return t.pipeline(pipeline)


@router.get("/api/pipelines/{pipeline_id}")
async def get_pipeline(pipeline_id: str, principal: Reader, session: DbSession) -> dict[str, Any]:
    """A pipeline with its execution count and last execution."""
    pipeline, _ = await pipelines_service.get_pipeline(session, principal, pipeline_id)
    count, last = await pipelines_service.execution_summary(session, pipeline.id)
    last_view = None
    if last is not None:
        last_view = {
            k: t.execution(last)[k] for k in ("id", "status", "started_at", "completed_at")
        }
    return {**t.pipeline(pipeline), "executions_count": count, "last_execution": last_view}


@router.delete("/api/pipelines/{pipeline_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pipeline(pipeline_id: str, principal: Admin, session: DbSession) -> Response:
    """Delete a pipeline with its executions."""
    await pipelines_service.delete_pipeline(session, principal, pipeline_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- executions -----------------------------------------------------------------------------


@router.post("/api/pipelines/{pipeline_id}/executions", status_code=status.HTTP_202_ACCEPTED)
async def start_execution(
    pipeline_id: str,
    body: w.StartExecutionRequest,
    principal: Deployer,
    session: DbSession,
    ctx: Ctx,
) -> dict[str, Any]:
    """Start an execution; it is queued and runs in the background."""
    run = await runs_service.start_execution(
        session,
        principal,
        pipeline_id,
        trigger=body.trigger,
        branch=body.branch,
        commit_sha=body.commit_sha,
        variables=body.variables,
    )
    await session.commit()
    ctx.wake_engine()
    return t.execution(run)


@router.get("/api/executions/{execution_id}")
async def get_execution(execution_id: str, principal: Reader, session: DbSession) -> dict[str, Any]:
    """An execution with per-stage and per-step status, exit codes, timings and log URLs."""
    run, steps = await runs_service.get_execution(session, principal, execution_id)
    return t.execution_detail(run, steps)


@router.post("/api/executions/{execution_id}/cancel")
async def cancel_execution(
    execution_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> dict[str, Any]:
    """Cancel: running steps get SIGTERM, then SIGKILL after a grace period; waits until stopped."""
    run, events = await runs_service.request_cancel(session, principal, execution_id)
    await session.commit()
    runs_service.announce_cancel(ctx.bus, run.id, events)
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while run.status not in FINISHED and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        async with ctx.database.reading() as fresh:
            run, _ = await runs_service.get_execution(fresh, principal, execution_id)
    return {
        "id": run.id,
        "status": t.STATUS[run.status],
        "cancelled_at": t.iso(run.cancel_requested_at_ms),
    }


@router.get("/api/executions/{execution_id}/logs/{stage}/{step}", response_model=None)
async def step_logs(
    execution_id: str,
    stage: str,
    step: str,
    principal: Reader,
    session: DbSession,
    ctx: Ctx,
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    follow: bool = False,
    after: Annotated[int, Query(ge=0, description="Return lines after this seq.")] = 0,
) -> dict[str, Any] | StreamingResponse:
    """A step's log lines; `tail` for the last N; `follow` streams NDJSON until the step ends."""
    run, step_row, lines, has_more = await runs_service.step_logs(
        session, principal, execution_id, stage, step, tail=tail, after_seq=after, limit=10_000
    )
    if not follow:
        return {"logs": [t.log_line(x) for x in lines], "has_more": has_more}
    return StreamingResponse(
        _follow(ctx, run.id, step_row.id, lines), media_type="application/x-ndjson"
    )


async def _follow(ctx: Ctx, run_id: str, step_id: str, first: list[Any]) -> AsyncIterator[bytes]:
    """Lines so far, then new ones as they are stored, until the step has ended."""
    last_seq = first[-1].seq if first else 0
    for line in first:
        yield orjson.dumps(t.log_line(line)) + b"\n"
    async with ctx.bus.subscribe(log_topic(run_id)) as queue:
        while True:
            async with ctx.database.reading() as session:
                lines, step_status = await runs_service.step_lines_after(
                    session, run_id, step_id, last_seq
                )
            for line in lines:
                last_seq = line.seq
                yield orjson.dumps(t.log_line(line)) + b"\n"
            if step_status in FINISHED and not lines:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), 1.0)


# --- webhook --------------------------------------------------------------------------------


@router.post("/webhooks/github")
async def github_webhook(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    x_github_event: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """GitHub push or pull_request: start matching pipelines (signed; replays ignored)."""
    await rate_limit(request, "webhook", client_ip(request))
    outcome = await handle_github_webhook(
        session,
        ctx.keyring,
        event=x_github_event,
        delivery_id=x_github_delivery,
        signature=x_hub_signature_256,
        body=await request.body(),
        refresh=lambda workspace, sha: from_repository.refresh(
            session, workspace, ctx.settings.resolved_data_dir, sha
        ),
    )
    await session.commit()
    if outcome.executions:
        ctx.wake_engine()
    return {"message": outcome.message, "executions_triggered": len(outcome.executions)}
