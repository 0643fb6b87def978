"""Stop, start and restart an app's live release (not in the Rustploy contract: Shipyard's own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from shipyard.api.deps import Ctx, DbSession, Deployer
from shipyard.api.v1 import V1
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.deployments import STATUS
from shipyard.api.v1.views import ERRORS
from shipyard.deployments import lifecycle
from shipyard.engine.states import APP_RUNNING, APP_STOPPED

router = APIRouter(prefix=f"{V1}/apps/{{app_id}}", tags=["deployments"], responses=ERRORS)
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": w.ApiErrorResponse,
        "description": "No live release (`not_deployed`), a deployment is queued or running "
        "(`deployment_in_progress`), or already in that state (`already_stopped`, "
        "`already_running`)",
    }
}


async def _act(
    action: w.AppAction, app_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.AppActionAccepted:
    run = await lifecycle.request_action(session, principal, app_id, action)
    await session.commit()
    ctx.wake_engine()
    return w.AppActionAccepted(
        deployment_id=run.id,
        status=STATUS[run.status],
        queued_at_unix_ms=run.created_at_ms,
        action=action,
        state=APP_STOPPED if action == "stop" else APP_RUNNING,
    )


@router.post(
    "/stop",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.AppActionAccepted,
    operation_id="stopApp",
    responses=CONFLICT,
)
async def stop_app(
    app_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.AppActionAccepted:
    """Stop the live release's instances; the proxy answers 503 for the app until it starts."""
    return await _act("stop", app_id, principal, session, ctx)


@router.post(
    "/start",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.AppActionAccepted,
    operation_id="startApp",
    responses=CONFLICT,
)
async def start_app(
    app_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.AppActionAccepted:
    """Start a stopped app's live release again: health-gated, then routed."""
    return await _act("start", app_id, principal, session, ctx)


@router.post(
    "/restart",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.AppActionAccepted,
    operation_id="restartApp",
    responses=CONFLICT,
)
async def restart_app(
    app_id: str, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.AppActionAccepted:
    """Replace the live release's instances with new ones, without downtime and without a build."""
    return await _act("restart", app_id, principal, session, ctx)
