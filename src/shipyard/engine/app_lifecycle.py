"""Stop, start, restart and recover an app's live release, without building anything.

A lifecycle run is a deployment run, so it reuses the deployment runner's plumbing (steps, log,
cancel, deadline, one active run per app) and only replaces what the run does:

- stop: the proxy answers 503 for the app, then its instances are stopped.
- start and restart: new instances of the live release (with the env it was deployed with) are
  started and health-gated, the proxy switches to them, the old ones (if any) are drained and
  stopped. A failure before the switch leaves the old instances serving.
- recover (queued at start-up): instances that are no longer running are replaced, the running
  ones are kept (with their current address: a restarted container may have a new port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from sqlalchemy import select

from shipyard.drivers.runtime.base import Instance
from shipyard.engine import compose_deploy
from shipyard.engine.deploy_runner import DeployRunner, StepFailed, _Deploy
from shipyard.engine.health import HealthCheck, wait_healthy
from shipyard.engine.recovery import running_upstreams
from shipyard.engine.states import APP_RUNNING, APP_STOPPED, FAILED
from shipyard.models import App, Release, Run


def health_check(release: Release) -> HealthCheck:
    hc = release.healthcheck or {}
    return HealthCheck(
        path=hc.get("path"),
        interval_seconds=hc.get("interval_seconds", 1),
        timeout_seconds=hc.get("timeout_seconds", 5),
        threshold=hc.get("threshold", 1),
        deadline_seconds=hc.get("deadline_seconds", 60),
    )


class LifecycleRunner(DeployRunner):
    """Runs the lifecycle runs of deployments/lifecycle.py."""

    async def _deploy(self, d: _Deploy) -> None:
        params = d.run.params or {}
        action = str(params.get("action"))
        async with self.database.reading() as session:
            app = await session.get(App, d.app.id)
            live = app.live_release_id if app is not None else None
            release = await session.get(Release, live) if live else None
        if release is None or release.id != params.get("release_id"):
            if action == "recover":  # a deployment replaced the release meanwhile
                await d.writer.write("nothing to recover: another release is live now")
                return
            raise StepFailed(f"the live release changed before the {action} ran; ask again")
        runtime = self.runtimes.get(release.runtime)
        if runtime is None:
            raise StepFailed(f"the release's runtime {release.runtime!r} is not available")
        d.release, d.runtime = release, runtime
        d.env = (
            json.loads(self.keyring.decrypt(release.env_ciphertext))
            if release.env_ciphertext
            else {}
        )
        if action == "stop":
            await self._stop(d, release)
        else:
            await self._replace(d, release, recover=action == "recover")

    async def _stop(self, d: _Deploy, release: Release) -> None:
        async with self._step(d, "unroute"):
            async with self.database.transaction() as session:
                app = await session.get(App, d.app.id)
                assert app is not None
                app.state = APP_STOPPED
                await session.flush()
                await self.proxy.apply(session)  # the app's hostnames now answer 503
            await d.writer.write("the proxy answers 503 for the app while it is stopped")
        async with self._step(d, "stop"):
            await self._stop_each(d, release, release.instances or [])
            await self._record(release.id, [])

    async def _replace(self, d: _Deploy, release: Release, *, recover: bool) -> None:
        old = list(release.instances or [])
        keep: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        compose = compose_deploy.is_compose_ref(release.artifact_ref)
        switched = False
        try:
            async with self._step(d, "start"):
                wanted = max(1, len(old))
                if recover:
                    keep = await self._still_running(d, release, old)
                    old = []  # the dead ones are stopped already; the live ones stay
                elif compose and old:
                    # A release is one compose project: it cannot run twice side by side.
                    await d.writer.write("a compose release restarts with a short interruption")
                    await self._stop_each(d, release, old)
                    old = []
                for _ in range(wanted - len(keep)):
                    instance = await self._start_one(d, release, compose)
                    new.append(compose_deploy.record(instance))
                    await d.writer.write(f"started {instance.id[:12]} at {instance.upstream}")
            async with self._step(d, "health"):
                for entry in new:
                    problem = await wait_healthy(
                        entry["upstream"], health_check(release), d.writer.write
                    )
                    if problem is not None:
                        raise StepFailed(f"the new instance did not become healthy: {problem}")
            async with self._step(d, "switch"):
                async with self.database.transaction() as session:
                    app = await session.get(App, d.app.id)
                    row = await session.get(Release, release.id)
                    assert app is not None and row is not None
                    app.state = APP_RUNNING
                    row.instances = keep + new
                    await session.flush()
                    await self.proxy.apply(session)  # a proxy refusal rolls the switch back
                switched = True
                await d.writer.write("traffic switched to the new instances")
        finally:
            if not switched:  # the old instances (if any) keep serving
                await self._stop_each(d, release, new, quietly=True)
        if recover:
            return
        async with self._step(d, "drain"):
            if old:
                await asyncio.sleep(self.settings.drain_seconds)
        async with self._step(d, "stop_old"):
            await self._stop_each(d, release, old)

    async def _start_one(self, d: _Deploy, release: Release, compose: bool) -> Instance:
        if compose:
            return await compose_deploy.start(
                d.runtime,
                data_dir=self.settings.resolved_data_dir,
                ref=release.artifact_ref or "",
                port=release.port,
                env=d.env,
                log=d.writer.write,
            )
        return await d.runtime.start(self._instance_spec(d), d.writer.write)

    async def _still_running(
        self, d: _Deploy, release: Release, recorded: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The recorded instances that run now, at their current address; the others are
        stopped (a crash-looping container would otherwise linger) and reported."""
        running = await running_upstreams(d.runtime, d.app.name, release)
        alive: list[dict[str, Any]] = []
        for entry in recorded:
            if entry["id"] in running:
                alive.append({**entry, "upstream": running[entry["id"]]})
                continue
            await d.writer.write(f"instance {entry['id'][:12]} is not running; replacing it")
            await self._stop_each(d, release, [entry], quietly=True)
        return alive

    async def _stop_each(
        self,
        d: _Deploy,
        release: Release,
        recorded: list[dict[str, Any]],
        *,
        quietly: bool = False,
    ) -> None:
        grace = self.settings.stop_grace_seconds
        for entry in recorded:
            try:
                await compose_deploy.stop(d.runtime, entry, release.id, grace)
            except Exception:
                if not quietly:
                    raise
            else:
                await d.writer.write(f"stopped {entry['id'][:12]}")

    async def _record(self, release_id: str, instances: list[dict[str, Any]]) -> None:
        async with self.database.transaction() as session:
            row = await session.get(Release, release_id)
            if row is not None:
                row.instances = instances

    async def _abandon(self, run_id: str) -> None:
        """A lifecycle run that was running when Shipyard stopped: instances it started were not
        recorded yet, so whatever the app runs beyond its releases' instances is stopped."""
        async with self.database.reading() as session:
            run = await session.get(Run, run_id)
            app = await session.get(App, run.app_id) if run and run.app_id else None
            owned = select(Release).where(Release.app_id == (app.id if app else ""))
            releases = list((await session.execute(owned)).scalars())
        action = (run.params or {}).get("action", "operation") if run else "operation"
        known = {i["id"] for r in releases for i in (r.instances or [])}
        for name in {r.runtime for r in releases if r.status == "live"}:
            runtime = self.runtimes.get(name)
            if runtime is None or app is None:
                continue
            with contextlib.suppress(Exception):
                for stray in await runtime.running(app.name):
                    if stray.id not in known:
                        await runtime.stop(stray, self.settings.stop_grace_seconds)
        await self._finish(
            run_id, FAILED, f"interrupted: Shipyard stopped while this {action} ran; ask again"
        )
