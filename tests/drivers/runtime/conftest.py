"""Fixtures for the docker runtime: a real Docker Engine and base image (the repo's scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.drivers.runtime.base import Artifact, BuildSpec
from shipyard.drivers.runtime.docker import DockerRuntime

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"

# A tiny HTTP app: / answers $VERSION, /env/NAME an env var, /data lists /data (a volume, when
# mounted); it marks its boot and a graceful SIGTERM in /data.
SERVER = r"""
import http.server, os, pathlib, signal, socket, sys

data = pathlib.Path("/data")
if data.is_dir():
    (data / ("boot-" + socket.gethostname())).write_text("booted")

def on_term(*_):
    if data.is_dir():
        (data / "graceful").write_text("bye")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/env/"):
            body = os.environ.get(self.path[5:], "")
        elif self.path == "/data":
            body = " ".join(sorted(p.name for p in data.iterdir())) if data.is_dir() else ""
        else:
            body = os.environ.get("VERSION", "v1")
        raw = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

port = int(os.environ["PORT"])
print("serving on", port, flush=True)
http.server.HTTPServer(("0.0.0.0", port), Handler).serve_forever()
"""

DOCKERFILE = """FROM local/python:3.11
COPY server.py /srv/server.py
ENV VERSION=v1
CMD ["python3", "-u", "/srv/server.py"]
"""


class LogLines:
    """An async log function that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def remove_app_objects(client: Any, app: str) -> None:
    """Every container, image and volume the runtime made for this app."""
    import docker

    label = f"shipyard.app={app}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for image in client.images.list(filters={"label": label}):
        for tag in image.tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


@pytest.fixture(scope="session")
def runtime_base_image() -> str:
    """The local base image (local/python:3.11), with the engine started and the image made."""
    subprocess.run([SCRIPTS / "ensure-docker"], check=True)
    result = subprocess.run(
        [SCRIPTS / "ensure-base-images"], check=True, stdout=subprocess.PIPE, text=True
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def runtime_docker(runtime_base_image: str) -> Iterator[Any]:
    """A plain SDK client for the tests' own checks on the engine."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def docker_runtime(runtime_base_image: str) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(base_image=runtime_base_image)
    yield runtime
    runtime.close()


@pytest.fixture
def runtime_app(runtime_docker: Any) -> Iterator[str]:
    """A fresh app name; whatever the runtime made for it is removed afterwards."""
    app = f"t{uuid.uuid4().hex[:10]}"
    try:
        yield app
    finally:
        remove_app_objects(runtime_docker, app)


@pytest.fixture(scope="session")
def server_artifact(
    runtime_docker: Any, runtime_base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Artifact]:
    """The test server built once from a Dockerfile, as shipyard/<app>:r1."""
    source = tmp_path_factory.mktemp("server")
    (source / "server.py").write_text(SERVER)
    (source / "Dockerfile").write_text(DOCKERFILE)
    app = f"s{uuid.uuid4().hex[:10]}"
    runtime = DockerRuntime(base_image=runtime_base_image)
    spec = BuildSpec(app=app, release_id="r1", source_dir=source, profile="dockerfile")
    try:
        yield asyncio.run(runtime.build(spec, LogLines()))
    finally:
        runtime.close()
        remove_app_objects(runtime_docker, app)
