"""DockerRuntime against the real Docker Engine: images per release, containers, compose."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.drivers.runtime.base import Artifact, BuildSpec, Instance, InstanceSpec
from shipyard.drivers.runtime.docker import (
    BuildFailed,
    ComposeInstance,
    DockerRuntime,
    StartFailed,
)
from shipyard.errors import Invalid, NotFound

from .conftest import DOCKERFILE, SERVER, LogLines


async def get(upstream: str, path: str = "/", within: float = 10.0) -> str:
    """GET http://upstream/path, retrying while the app is still starting."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                response = await client.get(f"http://{upstream}{path}")
                response.raise_for_status()
                return response.text
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def instance_spec(app: str, artifact: Artifact, **fields: Any) -> InstanceSpec:
    fields.setdefault("port", 8000)
    return InstanceSpec(
        app=app, release_id=fields.pop("release_id", "r1"), artifact=artifact, **fields
    )


def containers_of(client: Any, app: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"shipyard.app={app}"}))


def write_server_app(source: Path) -> Path:
    source.mkdir(parents=True, exist_ok=True)
    (source / "server.py").write_text(SERVER)
    return source


# -- build from a Dockerfile, start, stop ------------------------------------------------------


async def test_dockerfile_build_then_start_answers(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, runtime_docker: Any
) -> None:
    source = write_server_app(tmp_path / "src")
    (source / "Dockerfile").write_text(DOCKERFILE.replace("v1", "built-v7"))
    log = LogLines()

    artifact = await docker_runtime.build(
        BuildSpec(app=runtime_app, release_id="rel1", source_dir=source, profile="dockerfile"),
        log,
    )
    instance = await docker_runtime.start(
        instance_spec(runtime_app, artifact, release_id="rel1"), log
    )

    assert artifact.ref == f"shipyard/{runtime_app}:rel1"
    image = runtime_docker.images.get(artifact.ref)
    assert image.labels["shipyard.app"] == runtime_app
    assert image.labels["shipyard.release"] == "rel1"
    assert any(line.endswith(" : FROM local/python:3.11") for line in log.lines)
    assert instance.upstream.startswith("127.0.0.1:")
    assert await get(instance.upstream) == "built-v7"
    container = runtime_docker.containers.get(instance.id)
    assert container.name.startswith(f"shipyard-{runtime_app}-rel1-")
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.attrs["HostConfig"]["Init"] is True
    bindings = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}


async def test_env_and_port_reach_the_app(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact
) -> None:
    spec = instance_spec(runtime_app, server_artifact, port=8123, env={"GREETING": "hi there"})

    instance = await docker_runtime.start(spec, LogLines())

    assert await get(instance.upstream, "/env/GREETING") == "hi there"
    assert await get(instance.upstream, "/env/PORT") == "8123"


async def test_limits_and_labels_are_set_on_the_container(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    spec = instance_spec(
        runtime_app, server_artifact, memory_limit_mb=96, cpu_limit=0.5, labels={"team": "a"}
    )

    instance = await docker_runtime.start(spec, LogLines())

    attrs = runtime_docker.containers.get(instance.id).attrs
    assert attrs["HostConfig"]["Memory"] == 96 * 1024 * 1024
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    labels = attrs["Config"]["Labels"]
    assert labels["team"] == "a"
    assert labels["shipyard.managed"] == "true"
    assert labels["shipyard.app"] == runtime_app
    assert labels["shipyard.release"] == "r1"


async def test_named_volume_survives_stop_and_sigterm_reaches_the_app(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    volume = f"{runtime_app}-data"
    spec = instance_spec(runtime_app, server_artifact, volumes={volume: "/data"})

    first = await docker_runtime.start(spec, LogLines())
    first_files = await get(first.upstream, "/data")
    await docker_runtime.stop(first, grace_seconds=5)
    second = await docker_runtime.start(spec, LogLines())
    second_files = (await get(second.upstream, "/data")).split()

    assert first_files.startswith("boot-")
    assert runtime_docker.volumes.get(volume).name == volume
    assert first_files in second_files  # the first instance's file is still there
    assert "graceful" in second_files  # its SIGTERM handler ran: the init passed the signal on
    assert len([f for f in second_files if f.startswith("boot-")]) == 2


async def test_stop_removes_the_container_and_a_missing_one_is_fine(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    instance = await docker_runtime.start(instance_spec(runtime_app, server_artifact), LogLines())

    await docker_runtime.stop(instance, grace_seconds=0.2)
    await docker_runtime.stop(instance, grace_seconds=0.2)

    assert containers_of(runtime_docker, runtime_app) == []
    assert await docker_runtime.running(runtime_app) == []


async def test_running_lists_the_apps_instances(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact
) -> None:
    one = await docker_runtime.start(instance_spec(runtime_app, server_artifact), LogLines())
    two = await docker_runtime.start(
        instance_spec(runtime_app, server_artifact, release_id="r2"), LogLines()
    )

    found = await docker_runtime.running(runtime_app)

    assert sorted(found, key=lambda i: i.release_id) == [one, two]
    assert await docker_runtime.running(f"{runtime_app}x") == []


async def test_output_follows_the_instances_lines(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact
) -> None:
    instance = await docker_runtime.start(
        instance_spec(runtime_app, server_artifact, port=8111), LogLines()
    )

    async def first_line() -> str:
        async for line in docker_runtime.output(instance):
            return line
        return ""

    assert await asyncio.wait_for(first_line(), 10) == "serving on 8111"


async def test_start_returns_once_the_app_listens_not_after_the_settle_period(
    docker_runtime: DockerRuntime,
    runtime_app: str,
    server_artifact: Artifact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_runtime, "start_settle_seconds", 30.0)
    began = time.monotonic()

    instance = await docker_runtime.start(instance_spec(runtime_app, server_artifact), LogLines())

    assert time.monotonic() - began < 10
    assert await get(instance.upstream)


async def test_a_container_that_exits_at_once_is_a_clear_error(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    artifact = Artifact(ref=server_artifact.ref, start_command="echo cannot-bind-db >&2; exit 3")

    with pytest.raises(StartFailed) as caught:
        await docker_runtime.start(instance_spec(runtime_app, artifact), LogLines())

    assert "exited right after start" in caught.value.message
    assert "cannot-bind-db" in caught.value.message
    assert containers_of(runtime_docker, runtime_app) == []


# -- run_once ----------------------------------------------------------------------------------


async def test_run_once_returns_the_exit_code_and_logs_output(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    volume = f"{runtime_app}-once"
    spec = instance_spec(runtime_app, server_artifact, env={"NAME": "db"}, volumes={volume: "/v"})
    log = LogLines()

    code = await docker_runtime.run_once(
        spec, "echo migrating $NAME on $PORT; echo done > /v/mark; echo oops >&2; exit 3", log, 30
    )
    again = await docker_runtime.run_once(spec, "cat /v/mark", log, 30)

    assert code == 3
    assert again == 0
    # stdout and stderr are separate pipes: their relative order is not kept.
    assert sorted(log.lines) == ["done", "migrating db on 8000", "oops"]
    assert log.lines[-1] == "done"
    assert containers_of(runtime_docker, runtime_app) == []


async def test_run_once_kills_a_command_at_its_timeout(
    docker_runtime: DockerRuntime, runtime_app: str, server_artifact: Artifact, runtime_docker: Any
) -> None:
    log = LogLines()
    started = time.monotonic()

    code = await docker_runtime.run_once(
        instance_spec(runtime_app, server_artifact), "echo begin; sleep 60", log, 1.0
    )

    assert code == 124
    assert time.monotonic() - started < 15
    assert log.lines[0] == "begin"
    assert any("did not finish within 1s" in line for line in log.lines)
    assert containers_of(runtime_docker, runtime_app) == []


# -- generated Dockerfiles and the layer cache -------------------------------------------------


async def test_python_profile_builds_a_generated_dockerfile(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path
) -> None:
    source = write_server_app(tmp_path / "src")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    log = LogLines()
    spec = BuildSpec(
        app=runtime_app,
        release_id="r1",
        source_dir=source,
        profile="python",
        start_command="python3 server.py",
        build_command="echo built-at-build > /app/built.txt",
    )

    artifact = await docker_runtime.build(spec, log)
    instance = await docker_runtime.start(
        instance_spec(runtime_app, artifact, env={"VERSION": "gen-v2"}), log
    )
    checks = await docker_runtime.run_once(
        instance_spec(runtime_app, artifact),
        "test -f /app/server.py && grep -q built-at-build /app/built.txt && test ! -e /app/.git"
        " && test ! -e /app/.shipyard.Dockerfile && test ! -e /app/.dockerignore",
        log,
        30,
    )

    assert await get(instance.upstream) == "gen-v2"
    assert checks == 0
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before  # checkout untouched
    assert '  CMD ["sh", "-c", "exec python3 server.py"]' in log.lines


def remove_step_images(client: Any, log: LogLines) -> None:
    """The untagged step images a failed build left (its ` ---> id` lines), newest first."""
    import docker

    for line in reversed(log.lines):
        if line.startswith(" ---> ") and " " not in line[6:]:
            with contextlib.suppress(docker.errors.APIError):
                # Never a tagged one: the FROM step's id is the base image itself.
                if not client.images.get(line[6:]).tags:
                    client.images.remove(line[6:])


async def test_python_requirements_install_before_the_source_is_copied(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, runtime_docker: Any
) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "requirements.txt").write_text("flask\n")
    log = LogLines()

    # The base image here has no pip, so the dependency step fails, and says why.
    try:
        with pytest.raises(BuildFailed):
            await docker_runtime.build(
                BuildSpec(app=runtime_app, release_id="r1", source_dir=tmp_path, profile="python"),
                log,
            )
    finally:
        remove_step_images(runtime_docker, log)

    dockerfile = [line.strip() for line in log.lines if line.startswith("  ")]
    assert dockerfile.index("COPY requirements.txt /app/requirements.txt") < dockerfile.index(
        "COPY . /app"
    )
    assert dockerfile[-1] == 'CMD ["sh", "-c", "exec python3 app.py"]'
    assert any("requirements.txt needs pip" in line for line in log.lines)


async def test_static_profile_serves_the_checkout(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path
) -> None:
    source = tmp_path / "site"
    source.mkdir()
    (source / "hello.txt").write_text("static hello")
    spec = BuildSpec(app=runtime_app, release_id="r1", source_dir=source, profile="static")

    artifact = await docker_runtime.build(spec, LogLines())
    instance = await docker_runtime.start(instance_spec(runtime_app, artifact), LogLines())

    assert await get(instance.upstream, "/hello.txt") == "static hello"


async def test_second_build_uses_the_cache_and_no_cache_rebuilds(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, runtime_docker: Any
) -> None:
    source = write_server_app(tmp_path / "src")
    spec = BuildSpec(
        app=runtime_app,
        release_id="r1",
        source_dir=source,
        profile="python",
        start_command="python3 server.py",
        build_command="echo compiling",
    )
    first_log, second_log, third_log = LogLines(), LogLines(), LogLines()

    first = await docker_runtime.build(spec, first_log)
    started = time.monotonic()
    second = await docker_runtime.build(
        BuildSpec(**{**spec.__dict__, "release_id": "r2"}), second_log
    )
    cached_seconds = time.monotonic() - started
    third = await docker_runtime.build(
        BuildSpec(**{**spec.__dict__, "release_id": "r3", "no_cache": True}), third_log
    )

    assert "compiling" in first_log.lines
    assert "Using cache" in second_log.text and "compiling" not in second_log.lines
    assert cached_seconds < 5
    assert "Using cache" not in third_log.text and "compiling" in third_log.lines
    layers = {
        ref: runtime_docker.images.get(ref).history()[1]["Id"]
        for ref in (first.ref, second.ref, third.ref)
    }
    assert layers[first.ref] == layers[second.ref] != layers[third.ref]


async def test_build_failure_is_concise_and_the_output_was_logged(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(
        "FROM local/python:3.11\nRUN echo compiler-says-line-42 && exit 3\n"
    )
    log = LogLines()

    with pytest.raises(BuildFailed) as caught:
        await docker_runtime.build(
            BuildSpec(app=runtime_app, release_id="r1", source_dir=source, profile="dockerfile"),
            log,
        )

    assert "\n" not in caught.value.message
    assert "returned a non-zero code: 3" in caught.value.message
    assert "compiler-says-line-42" in log.lines


async def test_a_missing_base_image_is_not_pulled(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("ARG BASE=nowhere/missing\nFROM ${BASE}:1.0 AS app\n")

    with pytest.raises(NotFound) as caught:
        await docker_runtime.build(
            BuildSpec(app=runtime_app, release_id="r1", source_dir=source, profile="dockerfile"),
            LogLines(),
        )

    assert "'nowhere/missing:1.0'" in caught.value.message
    assert "registry" in caught.value.message


async def test_image_profile_checks_the_local_image(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, runtime_base_image: str
) -> None:
    def spec(ref: str) -> BuildSpec:
        return BuildSpec(
            app=runtime_app, release_id="r1", source_dir=tmp_path, profile="image", image_ref=ref
        )

    artifact = await docker_runtime.build(spec(runtime_base_image), LogLines())
    with pytest.raises(NotFound) as caught:
        await docker_runtime.build(spec("nowhere/missing:2"), LogLines())

    image_id = docker_runtime._docker().images.get(runtime_base_image).id
    assert artifact == Artifact(ref=image_id) and image_id.startswith("sha256:")
    assert "build it or load it" in caught.value.message


@pytest.mark.parametrize("profile", ["go", "rust", "node"])
async def test_profiles_without_a_toolchain_need_a_dockerfile(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, profile: str
) -> None:
    spec = BuildSpec(
        app=runtime_app, release_id="r1", source_dir=tmp_path, profile=profile, start_command="x"
    )

    with pytest.raises(Invalid, match="add a Dockerfile"):
        await docker_runtime.build(spec, LogLines())


async def test_a_dockerfile_outside_the_checkout_is_refused(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path
) -> None:
    spec = BuildSpec(
        app=runtime_app,
        release_id="r1",
        source_dir=tmp_path,
        profile="dockerfile",
        dockerfile="../../etc/passwd",
    )

    with pytest.raises(Invalid, match="outside the checkout"):
        await docker_runtime.build(spec, LogLines())


# -- remove_artifact ---------------------------------------------------------------------------


async def test_remove_artifact_removes_only_shipyard_images(
    docker_runtime: DockerRuntime,
    runtime_app: str,
    tmp_path: Path,
    runtime_docker: Any,
    runtime_base_image: str,
) -> None:
    import docker

    (tmp_path / "Dockerfile").write_text("FROM local/python:3.11\nLABEL purpose=prune-test\n")
    artifact = await docker_runtime.build(
        BuildSpec(app=runtime_app, release_id="r1", source_dir=tmp_path, profile="dockerfile"),
        LogLines(),
    )
    # A shipyard/ name the builder did not make (an `image` app may name anything).
    foreign = f"shipyard/{runtime_app}:foreign"
    runtime_docker.images.get(runtime_base_image).tag(foreign)
    try:
        await docker_runtime.remove_artifact(artifact)
        await docker_runtime.remove_artifact(artifact)  # already gone: no error
        await docker_runtime.remove_artifact(Artifact(ref=runtime_base_image))
        await docker_runtime.remove_artifact(Artifact(ref=foreign))

        with pytest.raises(docker.errors.ImageNotFound):
            runtime_docker.images.get(artifact.ref)
        assert runtime_docker.images.get(runtime_base_image)
        assert runtime_docker.images.get(foreign)
    finally:
        runtime_docker.images.remove(foreign)


async def test_remove_artifact_keeps_an_image_in_use(
    docker_runtime: DockerRuntime, runtime_app: str, tmp_path: Path, runtime_docker: Any
) -> None:
    write_server_app(tmp_path)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    artifact = await docker_runtime.build(
        BuildSpec(app=runtime_app, release_id="r1", source_dir=tmp_path, profile="dockerfile"),
        LogLines(),
    )
    await docker_runtime.start(instance_spec(runtime_app, artifact), LogLines())

    await docker_runtime.remove_artifact(artifact)

    assert runtime_docker.images.get(artifact.ref)


# -- compose -----------------------------------------------------------------------------------

COMPOSE = """version: "3.8"
services:
  web:
    build: ./web
    init: true
    environment:
      PORT: "8000"
      VERSION: "${VERSION}"
    ports: ["127.0.0.1::8000"]
    volumes: ["data:/data"]
  worker:
    build:
      context: ./worker
    init: true
    volumes: ["data:/data"]
volumes:
  data: {}
"""


@pytest.fixture(scope="session")
def compose_cli() -> None:
    """Debian's docker-compose 1.29, installed when missing (idempotent)."""
    lib = Path(__file__).resolve().parents[3] / "scripts" / "lib.sh"
    subprocess.run(["bash", "-c", f'source "{lib}" && apt_install docker-compose'], check=True)


@pytest.fixture
def compose_project(
    compose_cli: None, runtime_docker: Any, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """A two-service compose project in tmp_path; its containers, images, volume go afterwards."""
    project = f"tc{uuid.uuid4().hex[:10]}"
    source = tmp_path / "stack"
    write_server_app(source / "web")
    (source / "web" / "Dockerfile").write_text(DOCKERFILE)
    (source / "worker").mkdir()
    (source / "worker" / "Dockerfile").write_text(
        "FROM local/python:3.11\n"
        'CMD ["sh", "-c", "echo worker-up > /data/worker; exec sleep 600"]\n'
    )
    (source / "docker-compose.yml").write_text(COMPOSE)
    try:
        yield project, source
    finally:
        label = f"com.docker.compose.project={project}"
        for container in runtime_docker.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for network in runtime_docker.networks.list(filters={"label": label}):
            network.remove()
        for volume in runtime_docker.volumes.list(filters={"label": label}):
            volume.remove(force=True)
        for service in ("web", "worker"):
            for image in runtime_docker.images.list(name=f"{project}_{service}"):
                for tag in image.tags:  # by tag: the layers may be shared with other images
                    runtime_docker.images.remove(tag)


async def test_compose_up_publishes_a_port_and_down_keeps_the_volume(
    docker_runtime: DockerRuntime, compose_project: tuple[str, Path], runtime_docker: Any
) -> None:
    project, source = compose_project
    log = LogLines()

    instances = await docker_runtime.compose_up(
        project, source, "docker-compose.yml", {"VERSION": "compose-v3"}, log
    )

    assert len(instances) == 1
    (web,) = instances
    assert isinstance(web, ComposeInstance) and isinstance(web, Instance)
    assert (web.service, web.container_port) == ("web", 8000)
    assert await get(web.upstream) == "compose-v3"
    deadline = time.monotonic() + 10
    while "worker" not in (await get(web.upstream, "/data")).split():
        assert time.monotonic() < deadline, "the worker never wrote to the shared volume"
        await asyncio.sleep(0.2)

    await docker_runtime.compose_down(project, source, "docker-compose.yml", log)

    label = f"com.docker.compose.project={project}"
    assert runtime_docker.containers.list(all=True, filters={"label": label}) == []
    assert runtime_docker.volumes.get(f"{project}_data")


async def test_compose_refuses_a_missing_image_without_pulling(
    docker_runtime: DockerRuntime, compose_project: tuple[str, Path]
) -> None:
    project, source = compose_project
    (source / "other.yml").write_text("services:\n  db:\n    image: nowhere/postgres:99\n")

    with pytest.raises(NotFound, match="nowhere/postgres:99"):
        await docker_runtime.compose_up(project, source, "other.yml", {}, LogLines())
