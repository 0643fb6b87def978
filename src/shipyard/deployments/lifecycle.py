"""Rules for stopping, starting and restarting an app's live release.

Each request is a deployment run (trigger ``stop``, ``start`` or ``restart``) run by the engine's
lifecycle job: it is listed with the app's deployments, has steps and a log, and is serialised
with deployments (one active operation per app).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import service as apps_service
from shipyard.auth.principal import Principal
from shipyard.deployments.service import active_runs, create_run
from shipyard.engine.states import APP_STOPPED
from shipyard.errors import Conflict
from shipyard.models import App, Release, Run

LIFECYCLE_JOB = "app_lifecycle"
ACTION_STEPS: dict[str, tuple[str, ...]] = {
    "stop": ("unroute", "stop"),
    "start": ("start", "health", "switch", "drain", "stop_old"),
    "restart": ("start", "health", "switch", "drain", "stop_old"),
    # Queued by the engine at start-up for instances that are no longer running.
    "recover": ("start", "health", "switch"),
}


async def request_action(
    session: AsyncSession, principal: Principal, app_id: str, action: str
) -> Run:
    """Queue a stop, start or restart of the app's live release; 409 when it cannot be done."""
    app = await apps_service.get_app(session, principal, app_id)
    release = await session.get(Release, app.live_release_id) if app.live_release_id else None
    if release is None:
        raise Conflict(
            f"the app has no live release to {action}: deploy it first", code="not_deployed"
        )
    busy = await active_runs(session, app.id)
    if busy:
        raise Conflict(
            f"deployment {busy[0].id} ({busy[0].trigger}) is {busy[0].status}; wait for it to "
            f"finish or cancel it, then {action} the app",
            code="deployment_in_progress",
        )
    stopped = app.state == APP_STOPPED
    if action == "stop" and stopped and not release.instances:
        raise Conflict("the app is already stopped", code="already_stopped")
    if action == "start" and not stopped:
        raise Conflict(
            "the app is already running; use restart to replace its instances",
            code="already_running",
        )
    return await queue_action(session, app, action, release, principal)


async def queue_action(
    session: AsyncSession,
    app: App,
    action: str,
    release: Release,
    principal: Principal | None = None,
) -> Run:
    """The run (and its job) for one lifecycle action; the caller has checked that it may run.
    Without a principal, Shipyard itself asked for it (recovery at start-up)."""
    params = {"action": action, "release_id": release.id, "commit_sha": release.commit_sha}
    return await create_run(
        session, app, principal, params, ACTION_STEPS[action], action, job=LIFECYCLE_JOB
    )
