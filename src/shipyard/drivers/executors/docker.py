"""Step executor that runs each step in its own container on a Docker Engine (docker SDK)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from shipyard.drivers.docker_client import LazyDockerClient
from shipyard.drivers.executors.base import StepSpec
from shipyard.errors import Invalid, NotFound

MANAGED_LABEL = "shipyard.managed"
WORKSPACE = "/workspace"
# How long wait() lets the log stream drain after the container has stopped; it normally ends at
# once, and removing the container earlier would cut the last lines off.
LOG_DRAIN_SECONDS = 30.0

_END = object()


class DockerExecutor:
    """Runs each step as a detached container with the step's workdir mounted at /workspace."""

    def __init__(self, client: Any = None) -> None:
        self._engine = LazyDockerClient(client)

    def _docker(self) -> Any:
        """The docker client, made on first use."""
        return self._engine.get()

    def close(self) -> None:
        """Close the engine connections (at shutdown); the next start() opens new ones."""
        self._engine.close()

    async def start(self, spec: StepSpec) -> DockerProcess:
        """Create and start the step's container; its output is collected from this moment on."""
        if spec.image is None:
            raise ValueError(
                "the docker executor needs StepSpec.image (the image to run the step in)"
            )
        workdir = spec.workdir.resolve()
        if not workdir.is_dir():
            # Docker would silently create a root-owned empty directory in its place.
            raise FileNotFoundError(f"step workdir {workdir} does not exist")
        container = await asyncio.to_thread(self._run, spec, str(workdir))
        return DockerProcess(container, asyncio.get_running_loop())

    def _run(self, spec: StepSpec, workdir: str) -> Any:
        """Blocking part of start(): create, then start, removing the container if start fails."""
        import docker

        client = self._docker()
        try:
            # create + start rather than containers.run(): run() pulls a missing image, and there
            # may be no registry to pull from; a missing image must be a clear error instead.
            container = client.containers.create(
                spec.image,
                command=list(spec.argv),
                environment=dict(spec.env),
                working_dir=WORKSPACE,
                volumes={workdir: {"bind": WORKSPACE, "mode": "rw"}},
                labels={**spec.labels, MANAGED_LABEL: "true"},
                # PID 1 ignores SIGTERM unless it installs a handler, so without an init every
                # cancel of a plain `sh -c` step would wait out the whole grace period.
                init=True,
                # The engine's default log driver may keep nothing readable; the step's log must.
                log_config=docker.types.LogConfig(type=docker.types.LogConfig.types.JSON),
                detach=True,
            )
        except docker.errors.ImageNotFound as exc:
            raise NotFound(
                f"image {spec.image!r} is not on the Docker Engine; build or pull it first "
                "(steps do not pull images)",
                code="image_not_found",
            ) from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
            raise Invalid(
                f"could not start {spec.argv[:1]} in image {spec.image!r}: {exc.explanation}"
            ) from exc
        return container


class DockerProcess:
    """One step's container: its output lines, exit code, and stop."""

    def __init__(self, container: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._container = container
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._eof = False
        self._terminated = False
        self._done: asyncio.Future[int] | None = None
        # Read the log from the start, whoever consumes it and whenever: wait() may run first,
        # and the lines must still be there after the container is removed.
        self._pump = threading.Thread(
            target=_pump_logs,
            args=(container, _pusher(loop, self._queue)),
            name=f"docker-logs-{container.short_id}",
            daemon=True,
        )
        self._pump.start()

    @property
    def container_id(self) -> str:
        """The container's id (for logs and for the reconciler)."""
        return str(self._container.id)

    async def lines(self) -> AsyncIterator[str]:
        """Output lines (stdout and stderr merged, lossy UTF-8, no newline)."""
        while not self._eof:
            item = await self._queue.get()
            if item is _END:
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                raise item
            else:
                for line in item:
                    yield line

    async def wait(self) -> int:
        """The exit code once the container has ended (negative signal number if we stopped it)."""
        # shield: one cancelled waiter must not cancel the clean-up others are awaiting too.
        return await asyncio.shield(self._finished())

    async def terminate(self, grace_seconds: float) -> None:
        """Stop the container (SIGTERM, SIGKILL after the grace period); returns once removed."""
        await asyncio.to_thread(self._stop, grace_seconds)
        await asyncio.shield(self._finished())

    def _stop(self, grace_seconds: float) -> None:
        """Blocking part of terminate()."""
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self._container.reload()
            if self._container.status in ("created", "running", "paused", "restarting"):
                # Set before stopping so the exit code that stop causes is read as a signal.
                self._terminated = True
                # The engine takes whole seconds; rounding up never cuts the grace short.
                self._container.stop(timeout=max(0, math.ceil(grace_seconds)))

    def _finished(self) -> asyncio.Future[int]:
        if self._done is None:
            self._done = asyncio.ensure_future(self._finish())
        return self._done

    async def _finish(self) -> int:
        result = await asyncio.to_thread(self._container.wait)
        code = int(result.get("StatusCode", -1))
        await asyncio.to_thread(self._pump.join, LOG_DRAIN_SECONDS)
        await asyncio.to_thread(self._remove)
        # The engine reports a signal death as 128+N; the Protocol wants -N for a killed step.
        if self._terminated and code > 128:
            return 128 - code
        return code

    def _remove(self) -> None:
        import docker

        # Removed here rather than with auto_remove, which would lose the exit code and log.
        with contextlib.suppress(docker.errors.NotFound):
            self._container.remove(force=True, v=True)


def _pusher(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> Callable[[Any], None]:
    """A thread-safe put into the loop's queue."""

    def push(item: Any) -> None:
        # A closed loop means nobody listens any more; the thread just runs out quietly.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, item)

    return push


def _pump_logs(container: Any, push: Callable[[Any], None]) -> None:
    """Follow the container's log in a thread and push batches of decoded lines, then _END."""
    try:
        streamed: list[bytes] = []

        def chunks() -> Iterable[bytes]:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                streamed.append(chunk)
                yield chunk
            # The follow stream can end before the engine has stored a last line that has no
            # newline (seen on Engine 20.10); once the container has ended, the full log has it.
            container.wait()
            seen = sum(len(c) for c in streamed)
            full = container.logs(stream=False, stdout=True, stderr=True)
            if len(full) > seen:
                yield full[seen:]

        _split_lines(chunks(), push)
    except Exception as exc:
        push(exc)
        return
    push(_END)


def _split_lines(chunks: Iterable[bytes], push: Callable[[Any], None]) -> None:
    """Decode chunks as UTF-8 (bad bytes replaced) and push each chunk's complete lines."""
    # Incremental: a multi-byte character may be split between two chunks.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    for chunk in chunks:
        *complete, tail = (tail + decoder.decode(chunk)).split("\n")
        if complete:
            push([line.removesuffix("\r") for line in complete])
    tail += decoder.decode(b"", final=True)
    if tail:
        push([tail.removesuffix("\r")])
