"""At start-up, bring back what should be running: every running app's live release must have
its recorded instances running (processes die with the machine; containers may be gone, or
restarted by the engine on another port). Apps that need it get a ``recover`` lifecycle run."""

from __future__ import annotations

import logging

from sqlalchemy import select

from shipyard.db.engine import Database
from shipyard.deployments.lifecycle import queue_action
from shipyard.drivers.runtime.base import Runtime
from shipyard.engine import compose_deploy, jobs
from shipyard.engine.jobs import ClaimedJob
from shipyard.engine.states import APP_RUNNING
from shipyard.models import App, Release

log = logging.getLogger("shipyard.engine")

RECOVERY_JOB = "instance_recovery"


async def schedule(database: Database) -> bool:
    """Queue the check when any app has a live release; True when queued."""
    async with database.transaction() as session:
        found = await session.execute(
            select(App.id)
            .where(App.live_release_id.is_not(None), App.state == APP_RUNNING)
            .limit(1)
        )
        if found.first() is None:
            return False
        await jobs.enqueue(session, RECOVERY_JOB, {})
    return True


async def running_upstreams(runtime: Runtime, app: str, release: Release) -> dict[str, str]:
    """The instances of the app that run now (by id), at their current address."""
    found = {i.id: i.upstream for i in await runtime.running(app)}
    recorded = release.instances or []
    for project in {str(r["compose_project"]) for r in recorded if r.get("compose_project")}:
        docker = compose_deploy.require_docker(runtime, "compose")
        for instance in await docker.compose_running(project):
            if instance.container_port == release.port:  # the routed (web) service's port
                found[instance.id] = instance.upstream
    return found


class Recovery:
    """Compares each running app's recorded instances with what its runtime runs."""

    def __init__(self, database: Database, runtimes: dict[str, Runtime]) -> None:
        self.database, self.runtimes = database, runtimes

    async def handle(self, job: ClaimedJob) -> None:
        async with self.database.reading() as session:
            pairs = (
                await session.execute(
                    select(App, Release)
                    .join(Release, Release.id == App.live_release_id)
                    .where(App.state == APP_RUNNING)
                    .order_by(App.id)
                )
            ).all()
        for app, release in pairs:
            runtime = self.runtimes.get(release.runtime)
            if runtime is None:
                continue
            try:
                running = await running_upstreams(runtime, app.name, release)
            except Exception:  # one unreachable runtime must not keep the others down
                log.exception("could not list the instances of %s", app.name)
                continue
            recorded = {i["id"]: i["upstream"] for i in (release.instances or [])}
            if recorded and all(running.get(k) == v for k, v in recorded.items()):
                continue
            log.warning("app %s: its instances are not all running; recovering", app.name)
            async with self.database.transaction() as session:
                row = await session.get(App, app.id)
                live = await session.get(Release, release.id)
                if row is not None and live is not None and row.live_release_id == live.id:
                    await queue_action(session, row, "recover", live)
