"""Runtime that builds one image per release and runs its instances as containers (docker SDK)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from shipyard.drivers.docker_client import LazyDockerClient
from shipyard.drivers.runtime.base import Artifact, BuildSpec, Instance, InstanceSpec, LogFn
from shipyard.drivers.runtime.docker_build import (
    GENERATED_DOCKERFILE,
    NEEDS_DOCKERFILE,
    BuildFailed,
    BuildOutput,
    StartFailed,
    base_images,
    compose_argv,
    compose_config,
    compose_env,
    compose_images,
    context_archive,
    follow_lines,
    generated_dockerfile,
    image_tag,
    in_thread,
    inside,
    kill,
    pipe,
    remove_container,
    run_cli,
    start_argv,
    upstream_of,
    volume_mounts,
)
from shipyard.errors import Invalid, NotFound

__all__ = ["BuildFailed", "ComposeInstance", "DockerRuntime", "StartFailed"]

MANAGED, APP, RELEASE = "shipyard.managed", "shipyard.app", "shipyard.release"
ROLE, PORT = "shipyard.role", "shipyard.port"
COMPOSE_PROJECT = "com.docker.compose.project"
TIMEOUT_EXIT_CODE = 124  # what run_once returns for a command it killed at its timeout
LOG_DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class ComposeInstance(Instance):
    """A published port of a compose service (release_id holds the compose project's name)."""

    service: str
    container_port: int


async def _listening(attrs: Mapping[str, Any], port: int) -> bool:
    """Whether the container's own address (on its network) accepts connections on ``port``;
    False when the engine's host cannot reach container addresses."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = [n.get("IPAddress") for n in networks.values() if n.get("IPAddress")]
    if not addresses:
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addresses[0], port), 0.2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class DockerRuntime:
    """Builds images tagged shipyard/<app>:<release> and runs them as labelled containers."""

    name = "docker"
    # How long start() watches a new container for an immediate exit before calling it started.
    start_settle_seconds = 1.0

    def __init__(self, client: Any = None, base_image: str = "local/python:3.11") -> None:
        self._engine = LazyDockerClient(client)
        self.base_image = base_image
        self._toolchains: dict[str, bool] = {}

    def _docker(self) -> Any:
        """The docker client, made on first use."""
        return self._engine.get()

    def close(self) -> None:
        """Close the engine connections (at shutdown); the next call opens new ones."""
        self._engine.close()

    # -- build -----------------------------------------------------------------------------

    async def build(self, spec: BuildSpec, log: LogFn) -> Artifact:
        """Check an existing image, build the checkout's Dockerfile, or build a generated one."""
        if spec.profile == "image":
            if not spec.image_ref:
                raise Invalid("profile 'image' needs an image reference")
            image_id = await asyncio.to_thread(self._image_id, spec.image_ref)
            await log(f"using local image {spec.image_ref} ({image_id})")
            # The id, not the tag: the release keeps running (and rolls back to) this very image
            # when the tag is later moved to another one.
            return Artifact(ref=image_id, start_command=spec.start_command)
        if spec.profile == "compose":
            raise Invalid("compose projects are built and started by compose_up")
        tag = image_tag(spec.app, spec.release_id)
        if spec.profile == "dockerfile":
            path = inside(spec.source_dir, spec.dockerfile, "Dockerfile")
            if not path.is_file():
                raise NotFound(f"{spec.dockerfile} not found in the checkout")
            text = path.read_text(errors="replace")
            await asyncio.to_thread(self._require_images, base_images(text, spec.env), "base image")
            context: dict[str, Any] = {"path": str(spec.source_dir), "dockerfile": spec.dockerfile}
            await self._build(tag, spec, context, log)
            # A manifest start command overrides the Dockerfile's CMD when the container starts.
            return Artifact(ref=tag, start_command=spec.start_command)
        await self._check_toolchain(spec)
        text = generated_dockerfile(spec, self.base_image)
        await log(f"no Dockerfile: building profile {spec.profile} with this generated one:")
        for line in text.splitlines():
            await log(f"  {line}")
        await asyncio.to_thread(self._require_images, base_images(text, spec.env), "base image")
        # Spooled to a file, not memory: a checkout may be large. The checkout is left untouched.
        with tempfile.TemporaryFile() as archive:
            await asyncio.to_thread(context_archive, spec.source_dir, text, archive)
            context = {
                "fileobj": archive,
                "custom_context": True,
                "dockerfile": GENERATED_DOCKERFILE,
            }
            await self._build(tag, spec, context, log)
        return Artifact(ref=tag)

    async def _build(self, tag: str, spec: BuildSpec, context: dict[str, Any], log: LogFn) -> None:
        """Run the legacy builder, logging every line; BuildFailed with the last error line."""
        import docker

        await log(f"building {tag}{' without cache' if spec.no_cache else ''}")
        output = BuildOutput()

        def stream() -> Iterable[Any]:
            return self._docker().api.build(
                tag=tag,
                rm=True,
                forcerm=True,  # a failed step's container too
                nocache=spec.no_cache,
                decode=True,
                labels={APP: spec.app, RELEASE: spec.release_id},
                buildargs=dict(spec.env),
                **context,
            )

        try:
            async for message in in_thread(stream):
                for line in output.feed(message):
                    await log(line)
        except docker.errors.APIError as exc:
            await log(f"build failed: {exc.explanation or exc}")
            raise BuildFailed(f"build of {tag} failed: {exc.explanation or exc}") from exc
        for line in output.flush():
            await log(line)
        if output.error is not None:
            last = output.error.splitlines()[-1]
            raise BuildFailed(f"build of {tag} failed: {last}")

    async def _check_toolchain(self, spec: BuildSpec) -> None:
        """Invalid for a profile whose toolchain the base image lacks (it cannot be installed)."""
        if spec.profile in NEEDS_DOCKERFILE or (
            spec.profile == "node" and not await asyncio.to_thread(self._has_node)
        ):
            raise Invalid(
                f"profile {spec.profile!r} needs a toolchain that base image {self.base_image} "
                "lacks and none can be downloaded here: add a Dockerfile to the repository"
            )

    def _has_node(self) -> bool:
        """Whether the base image has node and npm (asked once, by running it)."""
        if self.base_image not in self._toolchains:
            client = self._docker()
            self._require_images([self.base_image], "base image")
            probe = client.containers.create(
                self.base_image,
                ["sh", "-c", "command -v node && command -v npm"],
                labels={MANAGED: "true", ROLE: "probe"},
            )
            try:
                probe.start()
                self._toolchains[self.base_image] = probe.wait().get("StatusCode") == 0
            finally:
                probe.remove(force=True)
        return self._toolchains[self.base_image]

    def _image_id(self, ref: str) -> str:
        """The id (sha256:…) of a local image; NotFound when it is not on the engine."""
        self._require_images([ref], "image")
        return str(self._docker().images.get(ref).id)

    def _require_images(self, refs: Iterable[str], what: str) -> None:
        """NotFound for the first image not on the engine: Shipyard never pulls."""
        import docker

        client = self._docker()
        for ref in refs:
            try:
                client.images.get(ref)
            except docker.errors.ImageNotFound as exc:
                raise NotFound(
                    f"{what} {ref!r} is not on the Docker Engine; build it or load it there "
                    "(docker build / docker load): there is no registry to pull from",
                    code="image_not_found",
                ) from exc

    # -- instances -------------------------------------------------------------------------

    async def start(self, spec: InstanceSpec, log: LogFn) -> Instance:
        """Create and start a container publishing spec.port on a loopback port Docker picks."""
        labels = {ROLE: "instance", PORT: str(spec.port)}
        container = await asyncio.to_thread(
            self._create,
            spec,
            labels,
            start_argv(spec.artifact.start_command),
            ports={f"{spec.port}/tcp": ("127.0.0.1", None)},
            restart_policy={"Name": "unless-stopped"},
        )
        await log(f"started container {container.name} from {spec.artifact.ref}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_settle_seconds
        while True:
            await asyncio.to_thread(container.reload)
            state = container.attrs["State"]
            # The restart policy hides an exit: a restarted (or restarting) container failed too.
            if (
                not state.get("Running")
                or state.get("Restarting")
                or container.attrs.get("RestartCount")
            ):
                await self._start_failed(container, state, log)
            # Listening means it got past an exit at start-up; a later crash is the health
            # gate's to see. Waiting out the whole settle period made redeploys ~1 s slower.
            if loop.time() >= deadline or await _listening(container.attrs, spec.port):
                break
            await asyncio.sleep(0.1)
        upstream = upstream_of(container.attrs, str(spec.port))
        if upstream is None:
            await asyncio.to_thread(container.remove, force=True, v=True)
            raise StartFailed(f"container {container.name} has no published port {spec.port}")
        return Instance(id=container.id, release_id=spec.release_id, upstream=upstream)

    async def _start_failed(self, container: Any, state: Mapping[str, Any], log: LogFn) -> NoReturn:
        """Log the last output of a container that exited at once, remove it, raise StartFailed."""
        raw = await asyncio.to_thread(container.logs, tail=20)
        tail = raw.decode("utf-8", errors="replace").splitlines()
        for line in tail:
            await log(line)
        await asyncio.to_thread(container.remove, force=True, v=True)
        detail = "\n".join(tail[-10:]) or "(no output)"
        raise StartFailed(
            f"container {container.name} exited right after start "
            f"(exit code {state.get('ExitCode')}); last output:\n{detail}"
        )

    async def run_once(self, spec: InstanceSpec, command: str, log: LogFn, timeout: float) -> int:
        """Run `sh -c command` in a one-off container; its exit code, or 124 on timeout."""
        container = await asyncio.to_thread(
            self._create, spec, {ROLE: "once"}, ["sh", "-c", command]
        )
        pump = asyncio.ensure_future(pipe(follow_lines(container), log))
        try:
            waiter = asyncio.ensure_future(asyncio.to_thread(container.wait))
            try:
                result = await asyncio.wait_for(asyncio.shield(waiter), timeout)
                code = int(result.get("StatusCode", -1))
            except TimeoutError:
                await log(f"command did not finish within {timeout:g}s; killed it")
                await asyncio.to_thread(kill, container)
                await waiter
                code = TIMEOUT_EXIT_CODE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), LOG_DRAIN_SECONDS)
            return code
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await asyncio.to_thread(remove_container, container)

    def _create(
        self, spec: InstanceSpec, labels: Mapping[str, str], command: Any, **extra: Any
    ) -> Any:
        """Create and start a container of the artifact with the spec's env, volumes and limits."""
        import docker

        client = self._docker()
        mounts = volume_mounts(client, spec.volumes, {APP: spec.app})
        name = f"shipyard-{spec.app}-{spec.release_id[:8]}-{secrets.token_hex(3)}"
        try:
            # create + start rather than containers.run(), which would pull a missing image.
            container = client.containers.create(
                spec.artifact.ref,
                command=command,
                name=name,
                environment={**spec.env, "PORT": str(spec.port)},
                labels={
                    **spec.labels,
                    **labels,
                    MANAGED: "true",
                    APP: spec.app,
                    RELEASE: spec.release_id,
                },
                mounts=mounts,
                nano_cpus=int(spec.cpu_limit * 1e9) if spec.cpu_limit else None,
                mem_limit=f"{spec.memory_limit_mb}m" if spec.memory_limit_mb else None,
                # PID 1 ignores SIGTERM unless it installs a handler; the init passes it on.
                init=True,
                # Bounded, and readable by output() whatever the engine's default driver is.
                log_config=docker.types.LogConfig(
                    type="json-file", config={"max-size": "10m", "max-file": "3"}
                ),
                detach=True,
                **extra,
            )
        except docker.errors.ImageNotFound as exc:
            raise NotFound(
                f"image {spec.artifact.ref!r} is not on the Docker Engine; build it first",
                code="image_not_found",
            ) from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            remove_container(container)
            raise StartFailed(f"could not start {name}: {exc.explanation or exc}") from exc
        return container

    async def stop(self, instance: Instance, grace_seconds: float) -> None:
        """Stop (SIGTERM, SIGKILL after the grace period) and remove; a missing one is stopped."""
        await asyncio.to_thread(self._stop, instance.id, grace_seconds)

    def _stop(self, container_id: str, grace_seconds: float) -> None:
        """Blocking part of stop()."""
        import docker

        try:
            container = self._docker().containers.get(container_id)
            # The engine takes whole seconds; rounding up never cuts the grace short.
            container.stop(timeout=max(0, math.ceil(grace_seconds)))
        except docker.errors.NotFound:
            return
        remove_container(container)

    async def running(self, app: str) -> list[Instance]:
        """This app's running instance containers, found by their labels."""
        return await asyncio.to_thread(self._running, app)

    def _running(self, app: str) -> list[Instance]:
        """Blocking part of running()."""
        containers = self._docker().containers.list(
            filters={"label": [f"{APP}={app}", f"{MANAGED}=true"], "status": "running"},
            ignore_removed=True,  # one stopped while listing is simply not running
        )
        instances = []
        for container in containers:
            labels = container.labels
            upstream = upstream_of(container.attrs, labels.get(PORT))
            # One-off release commands carry the same labels but are no upstream.
            if labels.get(ROLE) != "once" and upstream is not None:
                instances.append(Instance(container.id, labels.get(RELEASE, ""), upstream))
        return instances

    async def output(self, instance: Instance, tail: int | None = None) -> AsyncIterator[str]:
        """The container's output lines from its start (or its last ``tail`` ones), following
        until it stops."""
        import docker

        try:
            container = await asyncio.to_thread(self._docker().containers.get, instance.id)
        except docker.errors.NotFound:
            return  # gone: it has stopped, so there is nothing more to follow
        async for line in follow_lines(container, tail):
            yield line

    async def remove_artifact(self, artifact: Artifact) -> None:
        """Remove a release's shipyard/ image; any other image is not Shipyard's to remove."""
        await asyncio.to_thread(self._remove_image, artifact.ref)

    def _remove_image(self, ref: str) -> None:
        """Blocking part of remove_artifact()."""
        import docker

        if not ref.startswith("shipyard/"):
            return
        client = self._docker()
        try:
            # Only images the builder labelled: `image` apps may name any image, even shipyard/.
            if APP not in (client.images.get(ref).labels or {}):
                return
            client.images.remove(ref)
        except docker.errors.ImageNotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # in use by a container: kept, pruned another time
                raise

    # -- compose ---------------------------------------------------------------------------

    async def compose_up(
        self,
        project: str,
        source_dir: Path,
        compose_file: str,
        env: Mapping[str, str],
        log: LogFn,
    ) -> list[ComposeInstance]:
        """`docker-compose up -d --build` from local images; the services' published ports."""
        argv = compose_argv(project, source_dir, compose_file)
        environment = compose_env(env)
        config = await compose_config(argv, source_dir, environment)
        images = await asyncio.to_thread(compose_images, config, source_dir)
        await asyncio.to_thread(self._require_images, images, "image")
        code, out = await run_cli(
            [*argv, "up", "-d", "--build", "--remove-orphans"], source_dir, environment, log
        )
        if code != 0:
            raise BuildFailed(f"docker-compose up failed: {out[-1] if out else f'exit {code}'}")
        return list(await asyncio.to_thread(self._compose_instances, project))

    def _compose_instances(self, project: str) -> list[ComposeInstance]:
        """The published TCP ports of the project's running containers."""
        instances: list[ComposeInstance] = []
        for container in self._docker().containers.list(
            filters={"label": f"{COMPOSE_PROJECT}={project}", "status": "running"},
            ignore_removed=True,
        ):
            ports = container.attrs["NetworkSettings"].get("Ports") or {}
            for key in sorted(ports):
                number, _, proto = key.partition("/")
                upstream = upstream_of(container.attrs, number)
                if proto == "tcp" and upstream is not None:
                    service = container.labels.get("com.docker.compose.service", "")
                    instances.append(
                        ComposeInstance(container.id, project, upstream, service, int(number))
                    )
        return sorted(instances, key=lambda i: (i.service, i.container_port))

    async def compose_build(
        self,
        project: str,
        source_dir: Path,
        compose_file: str,
        env: Mapping[str, str],
        log: LogFn,
        no_cache: bool = False,
    ) -> None:
        """`docker-compose build` of the services with a build section, from local images."""
        argv = compose_argv(project, source_dir, compose_file)
        environment = compose_env(env)
        config = await compose_config(argv, source_dir, environment)
        images = await asyncio.to_thread(compose_images, config, source_dir)
        await asyncio.to_thread(self._require_images, images, "image")
        command = [*argv, "build", *(["--no-cache"] if no_cache else [])]
        code, out = await run_cli(command, source_dir, environment, log)
        if code != 0:
            raise BuildFailed(f"docker-compose build failed: {out[-1] if out else f'exit {code}'}")

    async def compose_running(self, project: str) -> list[ComposeInstance]:
        """The published TCP ports of the project's running containers (for reconciliation)."""
        return await asyncio.to_thread(self._compose_instances, project)

    async def compose_remove(self, project: str, grace_seconds: float) -> None:
        """Stop and remove a project's containers and networks by its label, as `down` would,
        without its compose file; volumes stay."""
        await asyncio.to_thread(self._compose_remove, project, grace_seconds)

    def _compose_remove(self, project: str, grace_seconds: float) -> None:
        """Blocking part of compose_remove()."""
        import docker

        client = self._docker()
        label = f"{COMPOSE_PROJECT}={project}"
        containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)

        def stop(container: Any) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                container.stop(timeout=max(0, math.ceil(grace_seconds)))
            remove_container(container)

        # All at once: one by one, each service would wait out its own grace period in turn.
        with ThreadPoolExecutor(max_workers=max(1, min(len(containers), 8))) as pool:
            list(pool.map(stop, containers))
        for network in client.networks.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()

    async def compose_logs(self, project: str, tail: int) -> list[str]:
        """The last lines of each of the project's containers, prefixed with its service."""
        return await asyncio.to_thread(self._compose_logs, project, tail)

    def _compose_logs(self, project: str, tail: int) -> list[str]:
        """Blocking part of compose_logs()."""
        lines: list[str] = []
        for container in self._docker().containers.list(
            all=True, filters={"label": f"{COMPOSE_PROJECT}={project}"}, ignore_removed=True
        ):
            service = container.labels.get("com.docker.compose.service", container.name)
            raw = container.logs(tail=tail).decode("utf-8", errors="replace")
            lines += [f"{service} | {line}" for line in raw.splitlines()]
        return lines

    async def compose_down(
        self, project: str, source_dir: Path, compose_file: str, log: LogFn
    ) -> None:
        """`docker-compose down`: containers and networks go, named volumes stay (no -v)."""
        argv = compose_argv(project, source_dir, compose_file)
        code, out = await run_cli(
            [*argv, "down", "--remove-orphans"], source_dir, compose_env({}), log
        )
        if code != 0:
            raise BuildFailed(f"docker-compose down failed: {out[-1] if out else f'exit {code}'}")
