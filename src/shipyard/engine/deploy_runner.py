"""Runs one deployment: fetch, build, release command, start, health gate, proxy switch, drain,
stop the old release, prune. A failure before the switch leaves the old release serving; the
deployment fails with a concise error while the full output stays in its log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shipyard.clock import now_ms
from shipyard.config import Settings
from shipyard.db.engine import Database
from shipyard.drivers import git
from shipyard.drivers.build_detection import detect
from shipyard.drivers.manifest import Manifest, load_manifest
from shipyard.drivers.runtime.base import Artifact, BuildSpec, Instance, InstanceSpec, Runtime
from shipyard.engine import compose_deploy
from shipyard.engine.health import HealthCheck, wait_healthy
from shipyard.engine.jobs import ClaimedJob
from shipyard.engine.proxy_sync import ProxySync
from shipyard.engine.release_prune import prune_releases
from shipyard.engine.run_end import end_run
from shipyard.engine.states import (
    APP_RUNNING,
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    move_run,
    move_step,
)
from shipyard.env import service as env_service
from shipyard.errors import ShipyardError
from shipyard.events.bus import EventBus, app_topic, run_topic
from shipyard.ids import new_id
from shipyard.logs.writer import LogWriter
from shipyard.models import App, Release, Run, RunStep
from shipyard.runs import events as run_events
from shipyard.secrets.keyring import Keyring
from shipyard.secrets.redaction import Redactor

DEFAULT_PORT = 8000
INTERRUPTED = (
    "interrupted: Shipyard stopped while this deployment ran; the live release keeps serving"
)
RELEASE_COMMAND_TIMEOUT = 600.0


class StepFailed(Exception):
    """A deployment step failed; the message is the concise reason users see."""


@dataclass
class _Deploy:
    run: Run
    app: App
    writer: LogWriter
    runtime: Runtime
    release: Release | None = None
    new_instance: Instance | None = None
    env: dict[str, str] = field(default_factory=dict)
    manifest: Manifest | None = None
    workdir: Path | None = None


class DeployRunner:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        keyring: Keyring,
        runtimes: dict[str, Runtime],
        proxy: ProxySync,
        settings: Settings,
    ) -> None:
        self.database, self.bus, self.keyring = database, bus, keyring
        self.runtimes, self.proxy, self.settings = runtimes, proxy, settings
        self._runtime_name: str | None = None
        self._stop_reasons: dict[str, str] = {}

    # --- plumbing -------------------------------------------------------------------------

    async def choose_runtime(self) -> Runtime:
        """SHIPYARD_RUNTIME, or for auto: docker when an engine answers, else processes."""
        if self._runtime_name is None:
            name = self.settings.runtime
            if name == "auto":
                name = "docker" if await _docker_answers() else "process"
            self._runtime_name = name
        return self.runtimes[self._runtime_name]

    async def _move(
        self, run_id: str, step_name: str, target: str, message: str | None = None
    ) -> None:
        async with self.database.transaction() as session:
            step = await session.scalar(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.name == step_name)
            )
            if step is None or step.status in FINISHED:
                return
            move_step(step, target, message=message)
            event = await run_events.record(
                session, run_id, target, None, step_name, kind="deployment_update"
            )
        run_events.publish(self.bus, run_id, [event])

    @contextlib.asynccontextmanager
    async def _step(self, d: _Deploy, name: str) -> AsyncIterator[None]:
        await self._move(d.run.id, name, RUNNING)
        await d.writer.write(f"==> {name}")
        try:
            yield
        except asyncio.CancelledError:
            await self._move(d.run.id, name, CANCELLED, "cancelled")
            raise
        except StepFailed as exc:
            await d.writer.write(f"{name} failed: {exc}", level="ERROR")
            await self._move(d.run.id, name, FAILED, str(exc))
            raise
        except ShipyardError as exc:
            await d.writer.write(f"{name} failed: {exc.message}", level="ERROR")
            await self._move(d.run.id, name, FAILED, exc.message)
            raise StepFailed(exc.message) from exc
        await self._move(d.run.id, name, SUCCEEDED)

    async def _finish(self, run_id: str, target: str, error: str | None) -> None:
        await end_run(self.database, self.bus, run_id, target, error, kind="deployment_update")

    # --- entry point ----------------------------------------------------------------------

    async def handle(self, job: ClaimedJob) -> None:
        run_id = job.payload["run_id"]
        async with self.database.reading() as session:
            run = await session.get(Run, run_id)
            if run is None or run.status in FINISHED:
                return
            interrupted = run.status == RUNNING
        if interrupted:
            await self._abandon(run_id)
            return
        if not await self._wait_turn(run_id):
            return
        async with self.database.transaction() as session:
            run = await session.get(Run, run_id)
            assert run is not None
            if run.status != QUEUED:
                return
            move_run(run, RUNNING)
            app = await session.get(App, run.app_id)
            event = await run_events.record(session, run_id, RUNNING, kind="deployment_update")
            env = await env_service.decrypted_env(session, run.app_id or "", self.keyring)
        run_events.publish(self.bus, run_id, [event])
        assert app is not None
        # Log streams waiting for the app's next deployment follow it from its first line.
        self.bus.publish(app_topic(app.id), {"type": "deployment", "run_id": run_id})
        writer = LogWriter(self.database, self.bus, run_id, Redactor(env.values()))
        d = _Deploy(run, app, writer, await self.choose_runtime(), env=env)
        work = asyncio.create_task(self._deploy(d))
        watcher = asyncio.create_task(self._watch(run_id, work))
        try:
            await work
            outcome, error = SUCCEEDED, None
        except StepFailed as exc:
            outcome, error = FAILED, str(exc)
        except asyncio.CancelledError:
            if not work.cancelled():
                raise  # Shipyard itself is stopping: the reconciler fails this run on restart
            outcome, error = self._cancel_outcome(d)
        finally:
            watcher.cancel()
            await self._cleanup_failed_start(d)
            await writer.close()
            if d.workdir is not None:
                shutil.rmtree(d.workdir, ignore_errors=True)
        await self._finish(run_id, outcome, error)

    def _cancel_outcome(self, d: _Deploy) -> tuple[str, str]:
        reason = self._stop_reasons.pop(d.run.id, "cancelled")
        return (CANCELLED if reason == "cancelled" else FAILED), reason

    async def _watch(self, run_id: str, work: asyncio.Task[None]) -> None:
        """Cancel the work on request (bus or database) or when the deadline passes."""
        deadline = asyncio.get_running_loop().time() + self.settings.deploy_deadline_seconds
        async with self.bus.subscribe(run_topic(run_id)) as queue:
            while not work.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), 1.0)
                async with self.database.reading() as session:
                    requested = await session.scalar(
                        select(Run.cancel_requested_at_ms).where(Run.id == run_id)
                    )
                if requested or asyncio.get_running_loop().time() > deadline:
                    if not requested:
                        self._stop_reasons[run_id] = (
                            f"deadline of {self.settings.deploy_deadline_seconds} s exceeded"
                        )
                    work.cancel()
                    return

    async def _wait_turn(self, run_id: str) -> bool:
        """One active deployment per app: wait while an older one of the same app runs."""
        while True:
            async with self.database.reading() as session:
                run = await session.get(Run, run_id)
                if run is None or run.status != QUEUED:
                    return False
                older = await session.scalar(
                    select(Run.id)
                    .where(
                        Run.app_id == run.app_id,
                        Run.kind == "deployment",
                        Run.status == RUNNING,
                        Run.id != run.id,
                    )
                    .limit(1)
                )
            if older is None:
                return True
            await asyncio.sleep(0.5)

    async def _abandon(self, run_id: str) -> None:
        """A deployment that was running when Shipyard stopped: fail it, stop what it started
        (unless live); the live release was never touched and keeps serving."""
        async with self.database.reading() as session:
            release = await session.scalar(select(Release).where(Release.deployment_id == run_id))
        if release is not None and release.status != "live":
            runtime = await self.choose_runtime()
            for inst in compose_deploy.recorded_instances(release):
                with contextlib.suppress(Exception):
                    await compose_deploy.stop(runtime, inst, release.id, 1.0)
        await self._finish(
            run_id,
            FAILED,
            INTERRUPTED,
        )

    async def _cleanup_failed_start(self, d: _Deploy) -> None:
        if d.new_instance is None or d.release is None or d.release.status == "live":
            return
        with contextlib.suppress(Exception):
            grace = self.settings.stop_grace_seconds
            await compose_deploy.stop(d.runtime, d.new_instance, d.release.id, grace)
        async with self.database.transaction() as session:
            release = await session.get(Release, d.release.id)
            if release is not None:
                release.instances = []

    # --- the steps ------------------------------------------------------------------------

    async def _deploy(self, d: _Deploy) -> None:
        params = d.run.params or {}
        if "rollback_release_id" in params:
            async with self.database.reading() as session:
                d.release = await session.get(Release, params["rollback_release_id"])
            assert d.release is not None
            d.env = (
                json.loads(self.keyring.decrypt(d.release.env_ciphertext))
                if d.release.env_ciphertext
                else {}
            )
            what = d.release.commit_sha or d.release.artifact_ref
            await d.writer.write(f"rolling back to release {d.release.id} ({what})")
        else:
            await self._fetch_and_build(d, params)
        await self._start_and_switch(d)

    async def _fetch_and_build(self, d: _Deploy, params: dict[str, Any]) -> None:
        app = d.app
        release_id = new_id()
        image_ref = params.get("image_ref") or (
            app.image_ref if app.source_type == "image" else None
        )
        commit = compose_file = None
        async with self._step(d, "fetch"):
            d.workdir = Path(tempfile.mkdtemp(prefix=f"shipyard-{app.name}-"))
            if image_ref:
                compose_deploy.require_docker(d.runtime, "image")
                profile, start_cmd, port_hint = "image", None, None
                await d.writer.write(f"image {image_ref}")
            else:
                if not app.clone_url:
                    raise StepFailed("the app has no repository to fetch")
                cache = self.settings.resolved_data_dir / "git" / "apps" / app.id
                await d.writer.write(f"fetching {git.redact_url(app.clone_url)}")
                mirror = await git.mirror(app.clone_url, cache)
                ref = (
                    params.get("commit_sha")
                    or params.get("source_ref")
                    or app.commit_sha
                    or app.branch
                    or app.default_branch
                    or "HEAD"
                )
                commit = await git.resolve_cached(mirror, ref)
                tree = await git.checkout(mirror, commit, d.workdir / "src")
                await d.writer.write(f"checked out {commit}")
                async with self.database.transaction() as session:
                    run_row = await session.get(Run, d.run.id)
                    if run_row is not None:
                        run_row.commit_sha = commit
                d.manifest = load_manifest(tree)
                detection = detect(tree)
                profile, start_cmd, port_hint = (
                    detection.build_profile,
                    detection.start_command,
                    detection.port_hint,
                )
                await d.writer.write(
                    f"detected {profile} ({detection.framework}, {detection.package_manager})"
                )
                if compose_deploy.wanted(app, profile):
                    compose_deploy.require_docker(d.runtime, "compose")
                    compose_file = app.compose_file or (
                        detection.compose.file if detection.compose else None
                    )
                    if compose_file is None:
                        raise StepFailed("no compose file: add compose.yaml or set compose_file")
                async with self.database.transaction() as session:
                    row = await session.get(App, app.id)
                    if row is not None:
                        row.detection = detection.result()
                        row.manifest = d.manifest.model_dump() if d.manifest else None
            manifest = d.manifest
            port = app.port or (manifest.port if manifest else None) or port_hint or DEFAULT_PORT
            env = {**(manifest.env if manifest else {}), **d.env}
            d.env = env
            healthcheck = _healthcheck(app, manifest)
            async with self.database.transaction() as session:
                release = Release(
                    id=release_id,
                    app_id=app.id,
                    deployment_id=d.run.id,
                    runtime=d.runtime.name,
                    status="building",
                    commit_sha=commit,
                    source_ref=params.get("source_ref"),
                    port=port,
                    healthcheck=healthcheck,
                    env_ciphertext=self.keyring.encrypt(json.dumps(env)),
                    created_at_ms=d.run.created_at_ms,
                    instances=[],
                )
                session.add(release)
            d.release = release
        async with self._step(d, "build"):
            if compose_file is not None:
                ref, port = await compose_deploy.build(d, self.settings, compose_file, params)
                await self._save_release(d, artifact_ref=ref, port=port, status="built")
            else:
                spec = BuildSpec(
                    app=app.name,
                    release_id=release_id,
                    source_dir=(d.workdir / "src") if not image_ref else d.workdir,
                    profile=profile,
                    image_ref=image_ref,
                    build_command=manifest.build if manifest else None,
                    start_command=(manifest.start if manifest else None) or start_cmd,
                    no_cache=bool(params.get("force_rebuild")),
                )
                artifact = await d.runtime.build(spec, d.writer.write)
                await self._save_release(
                    d,
                    artifact_ref=artifact.ref,
                    start_command=artifact.start_command,
                    status="built",
                )
        async with self._step(d, "release"):
            if manifest and manifest.release and compose_file is not None:
                raise StepFailed("`release` in shipyard.yaml is not run for compose apps (yet)")
            if manifest and manifest.release:
                code = await d.runtime.run_once(
                    self._instance_spec(d),
                    manifest.release,
                    d.writer.write,
                    RELEASE_COMMAND_TIMEOUT,
                )
                if code != 0:
                    raise StepFailed(
                        f"the release command `{manifest.release}` exited with code {code}"
                    )
            else:
                await d.writer.write("no release command")

    async def _start_and_switch(self, d: _Deploy) -> None:
        release = d.release
        assert release is not None
        async with self._step(d, "start"):
            if compose_deploy.is_compose_ref(release.artifact_ref):
                d.new_instance = await compose_deploy.start_release(d, self.settings)
            else:
                d.new_instance = await d.runtime.start(self._instance_spec(d), d.writer.write)
            await self._save_release(d, instances=[compose_deploy.record(d.new_instance)])
            await d.writer.write(f"started {d.new_instance.id[:12]} at {d.new_instance.upstream}")
        async with self._step(d, "health"):
            hc = release.healthcheck or {}
            check = HealthCheck(
                path=hc.get("path"),
                interval_seconds=hc.get("interval_seconds", 1),
                timeout_seconds=hc.get("timeout_seconds", 5),
                threshold=hc.get("threshold", 1),
                deadline_seconds=hc.get("deadline_seconds", 60),
            )
            problem = await wait_healthy(d.new_instance.upstream, check, d.writer.write)
            if problem is not None:
                raise StepFailed(f"the new release did not become healthy: {problem}")
        old: Release | None = None
        async with self._step(d, "switch"):
            async with self.database.transaction() as session:
                app = await session.get(App, d.app.id)
                assert app is not None
                old = (
                    await session.get(Release, app.live_release_id) if app.live_release_id else None
                )
                if old is not None:
                    old.status = "retired"
                new = await session.get(Release, release.id)
                assert new is not None
                new.status, new.live_since_ms = "live", now_ms()
                app.live_release_id = new.id
                app.state = APP_RUNNING  # a deployment also ends a stop (engine/app_lifecycle.py)
                await session.flush()
                await self.proxy.apply(session)  # a proxy refusal rolls the switch back
            release.status = "live"
            await d.writer.write("traffic switched to the new release")
        async with self._step(d, "drain"):
            if old is not None and old.instances:
                await asyncio.sleep(self.settings.drain_seconds)
        async with self._step(d, "stop_old"):
            if old is not None:
                for inst in old.instances or []:
                    await compose_deploy.stop(
                        d.runtime, inst, old.id, self.settings.stop_grace_seconds
                    )
                async with self.database.transaction() as session:
                    row = await session.get(Release, old.id)
                    if row is not None:
                        row.instances = []
        if "rollback_release_id" not in (d.run.params or {}):
            async with self._step(d, "prune"):
                await prune_releases(
                    self.database,
                    d.runtime,
                    self.settings.resolved_data_dir,
                    d.app.id,
                    self.settings.releases_keep,
                    d.writer.write,
                )

    def _instance_spec(self, d: _Deploy) -> InstanceSpec:
        release = d.release
        assert release is not None and release.artifact_ref is not None
        return InstanceSpec(
            app=d.app.name,
            release_id=release.id,
            artifact=Artifact(release.artifact_ref, release.start_command),
            port=release.port,
            env=d.env,
            labels={"shipyard.deployment": d.run.id},
        )

    async def _save_release(self, d: _Deploy, **values: Any) -> None:
        assert d.release is not None
        async with self.database.transaction() as session:
            row = await session.get(Release, d.release.id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
                setattr(d.release, key, value)


def _healthcheck(app: App, manifest: Manifest | None) -> dict[str, Any]:
    if manifest and manifest.healthcheck:
        hc = manifest.healthcheck
        return {
            "path": hc.path,
            "interval_seconds": hc.interval_seconds,
            "timeout_seconds": hc.timeout_seconds,
            "threshold": hc.threshold,
        }
    return {"path": app.healthcheck_path}


async def _docker_answers() -> bool:
    def ping() -> bool:
        try:
            import docker

            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    return await asyncio.to_thread(ping)
