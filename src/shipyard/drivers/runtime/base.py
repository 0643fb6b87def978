"""The Protocol every runtime implements, and the specs it is given.

A runtime builds an artifact for a release (an image, or a build directory), starts instances of
it listening on a loopback port that the proxy routes to, runs one-off release commands, stops
instances, and finds the instances it started (by labels or its state dir) so that the engine can
reconcile after a restart. The engine does the health gating and the proxy switch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LogFn = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class BuildSpec:
    app: str  # the app's name (a DNS label), used in image tags and container names
    release_id: str
    source_dir: Path  # a clean checkout of the release's commit (or a dir with a compose file)
    profile: str  # dockerfile | python | node | static | go | rust | compose | image
    image_ref: str | None = None  # profile "image": run this existing image, nothing to build
    dockerfile: str = "Dockerfile"
    build_command: str | None = None  # manifest's build (run inside the build)
    start_command: str | None = None  # manifest's start, Procfile web, or detected
    env: Mapping[str, str] = field(default_factory=dict)  # build-time env (not secrets in images)
    no_cache: bool = False  # force_rebuild


@dataclass(frozen=True)
class Artifact:
    """What a build produced: an image reference, or a directory for the process runtime."""

    ref: str
    start_command: str | None = None


@dataclass(frozen=True)
class InstanceSpec:
    app: str
    release_id: str
    artifact: Artifact
    port: int  # the port the app listens on inside its container / as PORT for a process
    env: Mapping[str, str] = field(default_factory=dict)
    cpu_limit: float | None = None  # cores
    memory_limit_mb: int | None = None
    volumes: Mapping[str, str] = field(default_factory=dict)  # named volume -> mount path
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    id: str  # container id, or the process runtime's instance id
    release_id: str
    upstream: str  # "127.0.0.1:PORT": where the proxy sends requests


class Runtime(Protocol):
    name: str

    async def build(self, spec: BuildSpec, log: LogFn) -> Artifact:
        """Build (or, for an existing image, check) the release's artifact; log every line."""
        ...

    async def run_once(self, spec: InstanceSpec, command: str, log: LogFn, timeout: float) -> int:
        """Run a one-off command (a release command) from the artifact; returns its exit code."""
        ...

    async def start(self, spec: InstanceSpec, log: LogFn) -> Instance:
        """Start one instance; returns once it is started (not necessarily healthy)."""
        ...

    async def stop(self, instance: Instance, grace_seconds: float) -> None:
        """Stop and remove the instance (SIGTERM, then SIGKILL after the grace period)."""
        ...

    async def running(self, app: str) -> list[Instance]:
        """The instances of this app that are running now (for reconciliation)."""
        ...

    def output(self, instance: Instance, tail: int | None = None) -> AsyncIterator[str]:
        """The running instance's output lines (only the last ``tail`` ones it printed so far,
        when given), following until it stops."""
        ...

    async def remove_artifact(self, artifact: Artifact) -> None:
        """Delete an artifact of a pruned release (never named volumes)."""
        ...
