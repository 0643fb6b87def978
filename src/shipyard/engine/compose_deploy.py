"""Compose apps in a deployment: a compose project per release, built from local images, started
beside the live release, its web service health-gated and routed to; the old project is brought
down after the switch. Named volumes belong to the app and are never removed.

A compose release's artifact is `compose://<project>/<web service>`; the project's rewritten
compose file and checkout are kept in `<data dir>/compose/<project>/` (for a rollback, and for the
files the services mount) until the release is pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from shipyard.drivers.runtime import docker_compose
from shipyard.drivers.runtime.base import Artifact, Instance, LogFn, Runtime
from shipyard.errors import Invalid, NotFound

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.drivers.runtime.docker import DockerRuntime
    from shipyard.engine.deploy_runner import _Deploy
    from shipyard.models import App, Release

COMPOSE_REF = "compose://"
_REMOVE_GRACE = 2.0


def wanted(app: App, profile: str) -> bool:
    """Whether this deployment runs the repository's compose file."""
    if app.build_mode == "dockerfile":
        return False
    return (
        app.source_type == "compose"
        or app.build_mode == "compose"
        or bool(app.compose_file)
        or profile == "compose"
    )


def require_docker(runtime: Runtime, what: str) -> DockerRuntime:
    """The docker runtime; Invalid naming what is missing on any other one."""
    if runtime.name != "docker":
        raise Invalid(
            f"{what} apps need Docker, and this Shipyard runs apps as processes "
            f"(SHIPYARD_RUNTIME={runtime.name}, or no Docker Engine answered): run Shipyard with "
            "SHIPYARD_RUNTIME=docker on a machine with a Docker Engine"
        )
    return cast("DockerRuntime", runtime)


def is_compose_ref(ref: str | None) -> bool:
    return bool(ref) and str(ref).startswith(COMPOSE_REF)


def _parse(ref: str) -> tuple[str, str]:
    project, _, service = ref.removeprefix(COMPOSE_REF).partition("/")
    return project, service


def _directory(data_dir: Path, project: str) -> Path:
    return data_dir / "compose" / project


async def build(
    d: _Deploy, settings: Settings, compose_file: str, params: Mapping[str, Any]
) -> tuple[str, int]:
    """Plan and build the release's project; its artifact ref and the web service's port."""
    docker = require_docker(d.runtime, "compose")
    assert d.release is not None and d.workdir is not None
    release_id, log, manifest = d.release.id, d.writer.write, d.manifest
    project = docker_compose.project_name(d.app.name, release_id)
    directory = _directory(settings.resolved_data_dir, project)
    # Kept with the release: files the services bind-mount from the repository must outlive
    # this deployment's temporary checkout.
    source = await asyncio.to_thread(docker_compose.keep_checkout, d.workdir / "src", directory)
    plan = await docker_compose.plan(
        app=d.app.name,
        release_id=release_id,
        source_dir=source,
        compose_file=compose_file,
        env=d.env,
        service=manifest.service if manifest else None,
        port=d.app.port or (manifest.port if manifest else None),
        log=log,
    )
    await log(f"compose project {plan.project}: web service {plan.service!r} on port {plan.port}")
    for note in plan.notes:
        await log(note)
    build_file = docker_compose.write_build_file(source, plan.build_text)
    no_cache = bool(params.get("force_rebuild"))
    await docker.compose_build(plan.project, source, build_file, d.env, log, no_cache=no_cache)
    docker_compose.save(directory, plan.run_text)
    return f"{COMPOSE_REF}{plan.project}/{plan.service}", plan.port


async def start_release(d: _Deploy, settings: Settings) -> Instance:
    """start() for the deployment's release."""
    assert d.release is not None and d.release.artifact_ref is not None
    return await start(
        d.runtime,
        data_dir=settings.resolved_data_dir,
        ref=d.release.artifact_ref,
        port=d.release.port,
        env=d.env,
        log=d.writer.write,
    )


async def start(
    runtime: Runtime, *, data_dir: Path, ref: str, port: int, env: Mapping[str, str], log: LogFn
) -> Instance:
    """Bring a release's project up; its web service's instance (the proxy's upstream)."""
    docker = require_docker(runtime, "compose")
    project, service = _parse(ref)
    directory = _directory(data_dir, project)
    if not (directory / docker_compose.RUN_FILE).is_file():
        raise NotFound(f"the compose file of {project} is gone (the release was pruned)")
    try:
        instances = await docker.compose_up(project, directory, docker_compose.RUN_FILE, env, log)
        web = next(
            (i for i in instances if i.service == service and i.container_port == port), None
        )
        if web is None:
            raise Invalid(
                f"compose service {service!r} is not running with port {port} published "
                "right after `up`: it exited or does not listen; see its output above"
            )
    except BaseException:
        with contextlib.suppress(Exception):
            await _show_output(docker, project, log)
            await docker.compose_remove(project, _REMOVE_GRACE)
        raise
    return web


async def _show_output(docker: DockerRuntime, project: str, log: LogFn) -> None:
    """The last output of the project's containers, for a start that failed."""
    for line in await docker.compose_logs(project, tail=20):
        await log(line)


def recorded_instances(release: Release) -> list[dict[str, Any]]:
    """The release's recorded instances; for a compose release at least its project, which an
    interrupted `up` may have started before the instance was recorded."""
    rows = list(release.instances or [])
    if is_compose_ref(release.artifact_ref) and not any(r.get("compose_project") for r in rows):
        rows.append({"compose_project": _parse(release.artifact_ref or "")[0]})
    return rows


def record(instance: Instance) -> dict[str, Any]:
    """How a release remembers its instance (in Release.instances)."""
    from shipyard.drivers.runtime.docker import ComposeInstance

    row: dict[str, Any] = {"id": instance.id, "upstream": instance.upstream}
    if isinstance(instance, ComposeInstance):
        row["compose_project"] = instance.release_id
    return row


async def stop(
    runtime: Runtime,
    recorded: Mapping[str, Any] | Instance,
    release_id: str,
    grace_seconds: float,
) -> None:
    """Stop an instance (as recorded): a whole compose project, or one container or process."""
    if isinstance(recorded, Instance):
        recorded = record(recorded)
    project = recorded.get("compose_project")
    if project:
        await require_docker(runtime, "compose").compose_remove(str(project), grace_seconds)
    else:
        instance = Instance(recorded["id"], release_id, recorded["upstream"])
        await runtime.stop(instance, grace_seconds)


async def prune(runtime: Runtime, data_dir: Path, ref: str) -> None:
    """Delete a pruned compose release's images and kept files (never its volumes)."""
    project, _ = _parse(ref)
    directory = _directory(data_dir, project)
    for image in docker_compose.images_of(directory):
        with contextlib.suppress(Exception):
            await runtime.remove_artifact(Artifact(image))
    await asyncio.to_thread(docker_compose.forget, directory)
