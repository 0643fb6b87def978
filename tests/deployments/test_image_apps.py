"""Image apps: a local image deployed through the API, served by a real Caddy; never pulled."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from tests.deployments.conftest import Platform, make_platform

SERVER = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('IMAGE=' + os.environ['VERSION']).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"""


class Images:
    """Builds tiny HTTP server images FROM local/python:3.11 under one test tag; removes them."""

    def __init__(self, client: Any, tmp_path: Path) -> None:
        self.client, self.tmp_path = client, tmp_path
        self.tag = f"shipyard-test/img-{uuid.uuid4().hex[:10]}:latest"
        self.ids: list[str] = []

    def build(self, version: str) -> str:
        """Build an image answering IMAGE=<version> and (re)tag it as self.tag."""
        context = self.tmp_path / f"image-{version}"
        context.mkdir()
        (context / "server.py").write_text(SERVER)
        (context / "Dockerfile").write_text(
            f"FROM local/python:3.11\nCOPY server.py /srv/server.py\nENV VERSION={version}\n"
            'CMD ["python3", "-u", "/srv/server.py"]\n'
        )
        image, _ = self.client.images.build(path=str(context), tag=self.tag, rm=True)
        self.ids.append(image.id)
        return str(image.id)

    def remove(self) -> None:
        import docker

        for ref in [self.tag, *self.ids]:
            with contextlib.suppress(docker.errors.ImageNotFound):
                self.client.images.remove(ref, force=True)


@pytest.fixture
def images(docker_image: str, tmp_path: Path) -> Iterator[Images]:
    import docker

    client = docker.from_env()
    made = Images(client, tmp_path)
    try:
        yield made
    finally:
        made.remove()
        client.close()


@pytest.fixture
async def docker_platform(
    images: Images, settings: Settings, caddy_installed: None
) -> AsyncIterator[Platform]:
    async for p in make_platform(settings, "docker"):
        yield p


@pytest.fixture
async def process_platform(settings: Settings, caddy_installed: None) -> AsyncIterator[Platform]:
    async for p in make_platform(settings, "process"):
        yield p


async def test_an_image_app_is_served_through_the_proxy(
    docker_platform: Platform, images: Images
) -> None:
    images.build("v1")
    app = await docker_platform.app("img", image_ref=images.tag, runtime={"port": 8080})

    done = await docker_platform.wait(app["id"], await docker_platform.deploy(app["id"]))

    assert done["status"] == "healthy", await docker_platform.logs(app["id"], done["id"])
    served = await docker_platform.get("img.localhost")
    assert served.status_code == 200 and served.text == "IMAGE=v1"


async def test_a_retagged_image_is_a_new_release_and_rollback_runs_the_old_image(
    docker_platform: Platform, images: Images
) -> None:
    first_id = images.build("v1")
    app = await docker_platform.app("img", image_ref=images.tag, runtime={"port": 8080})
    first = await docker_platform.wait(app["id"], await docker_platform.deploy(app["id"]))
    assert first["status"] == "healthy"
    images.build("v2")  # the same tag now names another image

    second = await docker_platform.wait(app["id"], await docker_platform.deploy(app["id"]))

    assert second["status"] == "healthy", await docker_platform.logs(app["id"], second["id"])
    assert (await docker_platform.get("img.localhost")).text == "IMAGE=v2"
    assert first_id in await docker_platform.logs(app["id"], first["id"])
    r = await docker_platform.api.client.post(
        f"/api/v1/apps/{app['id']}/rollback", headers=docker_platform.headers
    )
    back = await docker_platform.wait(app["id"], r.json()["deployment_id"])
    assert back["status"] == "healthy", await docker_platform.logs(app["id"], back["id"])
    assert (await docker_platform.get("img.localhost")).text == "IMAGE=v1"


async def test_a_missing_image_fails_without_pulling_and_the_old_release_serves(
    docker_platform: Platform, images: Images
) -> None:
    images.build("v1")
    app = await docker_platform.app("img", image_ref=images.tag, runtime={"port": 8080})
    assert (await docker_platform.wait(app["id"], await docker_platform.deploy(app["id"])))[
        "status"
    ] == "healthy"
    missing = f"shipyard-test/missing-{uuid.uuid4().hex[:8]}:1"

    failed = await docker_platform.wait(
        app["id"], await docker_platform.deploy(app["id"], image_ref=missing)
    )

    assert failed["status"] == "failed"
    assert f"image '{missing}' is not on the Docker Engine" in failed["last_error"]
    assert "no registry to pull from" in await docker_platform.logs(app["id"], failed["id"])
    assert (await docker_platform.get("img.localhost")).text == "IMAGE=v1"


async def test_the_process_runtime_fails_an_image_app_saying_it_needs_docker(
    process_platform: Platform,
) -> None:
    app = await process_platform.app("img", image_ref="local/python:3.11")

    failed = await process_platform.wait(app["id"], await process_platform.deploy(app["id"]))

    assert failed["status"] == "failed"
    assert "image apps need Docker" in failed["last_error"]
    assert "SHIPYARD_RUNTIME=docker" in await process_platform.logs(app["id"], failed["id"])
