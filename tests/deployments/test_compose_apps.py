"""Compose apps from a git repository, deployed through the API onto real Docker, served by a real
Caddy: a project per release, the web service routed to, named volumes kept across releases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from tests.deployments.conftest import Platform, git, make_platform

# web calls api by its service name and counts its own boots in the named volume.
WEB = """import http.server, os, pathlib, urllib.request
boots = pathlib.Path('/data/boots')
boots.write_text(str(int(boots.read_text()) + 1 if boots.exists() else 1))
VERSION = open('/srv/version.txt').read().strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        api = urllib.request.urlopen('http://api:9000/', timeout=5).read().decode()
        greeting = os.environ.get('GREETING', '')
        body = f'WEB={VERSION} API={api} BOOTS={boots.read_text()} GREETING={greeting}'.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"""

COMPOSE = """services:
  web:
    build: ./web
    ports: ["8000:8000"]
    volumes: ["data:/data"]
    depends_on: [api]
  api:
    image: local/python:3.11
    command:
      - python3
      - -c
      - |
        import http.server as s
        class H(s.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b'pong')
        s.HTTPServer(('0.0.0.0', 9000), H).serve_forever()
volumes:
  data: {}
"""


class Stack:
    """A git repository holding a two-service compose project; ``commit`` changes the web side."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        (path / "web").mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        (path / "web" / "server.py").write_text(WEB)
        (path / "web" / "Dockerfile").write_text(
            'FROM local/python:3.11\nCOPY . /srv\nCMD ["python3", "-u", "/srv/server.py"]\n'
        )
        (path / "docker-compose.yml").write_text(COMPOSE)
        self.commit("v1")

    def commit(self, version: str, **files: str) -> None:
        (self.path / "web" / "version.txt").write_text(version + "\n")
        for name, content in files.items():
            (self.path / name).write_text(content)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", version)

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"


def projects(client: Any, app: str) -> set[str]:
    """The compose projects with a container of this app (running or not)."""
    found = set()
    # ignore_removed: a container being removed while listed is simply gone.
    for container in client.containers.list(
        all=True, filters={"label": "com.docker.compose.project"}, ignore_removed=True
    ):
        project = container.labels["com.docker.compose.project"]
        if project.startswith(f"shipyard-{app}-"):
            found.add(project)
    return found


@pytest.fixture
def docker_client(docker_image: str) -> Iterator[Any]:
    """The engine (scripts/ensure-docker also installs docker-compose) and a client of it."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def stack(tmp_path: Path, docker_client: Any) -> Iterator[Stack]:
    """The repository; afterwards every container, network, image and volume of its app goes."""
    made = Stack(tmp_path / "stack", f"stack-{uuid.uuid4().hex[:6]}")
    try:
        yield made
    finally:
        for project in projects(docker_client, made.name):
            label = f"com.docker.compose.project={project}"
            for container in docker_client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
            for network in docker_client.networks.list(filters={"label": label}):
                network.remove()
        for image in docker_client.images.list(filters={"label": f"shipyard.app={made.name}"}):
            for tag in image.tags:
                docker_client.images.remove(tag, force=True)
        for volume in docker_client.volumes.list(filters={"name": f"shipyard_{made.name}_"}):
            volume.remove(force=True)


@pytest.fixture
async def docker_platform(
    stack: Stack, settings: Settings, caddy_installed: None
) -> AsyncIterator[Platform]:
    async for p in make_platform(settings, "docker"):
        yield p


async def deploy(platform: Platform, app: dict[str, Any]) -> dict[str, Any]:
    return await platform.wait(app["id"], await platform.deploy(app["id"]), timeout=180)


async def test_a_compose_app_serves_its_web_service_which_reaches_the_other_by_name(
    docker_platform: Platform, stack: Stack
) -> None:
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
    r = await docker_platform.api.client.put(
        f"/api/v1/apps/{app['id']}/env",
        json={"key": "GREETING", "value": "hello-secret"},
        headers=docker_platform.headers,
    )
    assert r.status_code == 200

    done = await deploy(docker_platform, app)

    logs = await docker_platform.logs(app["id"], done["id"])
    assert done["status"] == "healthy", logs
    assert [s["status"] for s in done["steps"]] == ["succeeded"] * 9
    served = await docker_platform.get(stack.host)
    assert served.status_code == 200
    assert served.text == "WEB=v1 API=pong BOOTS=1 GREETING=hello-secret"
    assert "hello-secret" not in logs
    assert "web service 'web' on port 8000" in logs


async def test_a_redeploy_switches_projects_and_keeps_the_named_volume(
    docker_platform: Platform, stack: Stack, docker_client: Any
) -> None:
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
    assert (await deploy(docker_platform, app))["status"] == "healthy"
    (first,) = projects(docker_client, stack.name)
    stack.commit("v2")

    second = await deploy(docker_platform, app)

    assert second["status"] == "healthy", await docker_platform.logs(app["id"], second["id"])
    assert (await docker_platform.get(stack.host)).text == "WEB=v2 API=pong BOOTS=2 GREETING="
    assert first not in projects(docker_client, stack.name)  # the old project was brought down
    assert len(projects(docker_client, stack.name)) == 1


async def test_a_compose_app_rolls_back_to_the_previous_project_without_rebuilding(
    docker_platform: Platform, stack: Stack
) -> None:
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
    assert (await deploy(docker_platform, app))["status"] == "healthy"
    stack.commit("v2")
    assert (await deploy(docker_platform, app))["status"] == "healthy"

    r = await docker_platform.api.client.post(
        f"/api/v1/apps/{app['id']}/rollback", headers=docker_platform.headers
    )
    back = await docker_platform.wait(app["id"], r.json()["deployment_id"], timeout=180)

    assert back["status"] == "healthy", await docker_platform.logs(app["id"], back["id"])
    assert (await docker_platform.get(stack.host)).text == "WEB=v1 API=pong BOOTS=3 GREETING="


async def test_pruning_a_compose_release_removes_its_images_and_files_not_the_volume(
    stack: Stack, settings: Settings, caddy_installed: None, docker_client: Any
) -> None:
    keep_one = settings.model_copy(update={"releases_keep": 1})
    async for platform in make_platform(keep_one, "docker"):
        app = await platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
        assert (await deploy(platform, app))["status"] == "healthy"
        (first,) = projects(docker_client, stack.name)
        stack.commit("v2")

        second = await deploy(platform, app)

        assert second["status"] == "healthy"
        assert "pruned 1 old release(s)" in await platform.logs(app["id"], second["id"])
        images = docker_client.images.list(filters={"label": f"shipyard.app={stack.name}"})
        tags = [tag for image in images for tag in image.tags]
        assert len(tags) == 1 and first.rsplit("-", 1)[-1] not in tags[0].replace("-", "")
        assert not (settings.resolved_data_dir / "compose" / first).exists()
        assert docker_client.volumes.get(f"shipyard_{stack.name}_data")
        assert (await platform.get(stack.host)).text == "WEB=v2 API=pong BOOTS=2 GREETING="


async def test_deleting_a_compose_app_brings_its_project_down_and_keeps_the_volume(
    docker_platform: Platform, stack: Stack, docker_client: Any
) -> None:
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
    assert (await deploy(docker_platform, app))["status"] == "healthy"

    r = await docker_platform.api.client.delete(
        f"/api/v1/apps/{app['id']}", headers=docker_platform.headers
    )

    assert r.status_code == 204
    for _ in range(200):
        if not projects(docker_client, stack.name):
            break
        await asyncio.sleep(0.1)
    assert projects(docker_client, stack.name) == set()
    assert (await docker_platform.get(stack.host)).status_code == 404
    assert docker_client.volumes.get(f"shipyard_{stack.name}_data")


async def test_a_compose_file_that_does_not_parse_fails_the_deployment_naming_it(
    docker_platform: Platform, stack: Stack
) -> None:
    stack.commit("broken", **{"docker-compose.yml": "services:\n  web:\n    image: [oops\n"})
    app = await docker_platform.app(
        stack.name, repository={"clone_url": stack.path.as_uri()}, compose_file="docker-compose.yml"
    )

    failed = await deploy(docker_platform, app)

    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("docker-compose.yml")
    assert "compose" in failed["last_error"]
    assert failed["last_error"] in await docker_platform.logs(app["id"], failed["id"])


async def test_a_compose_file_without_a_web_service_fails_saying_so(
    docker_platform: Platform, stack: Stack
) -> None:
    quiet = "services:\n  worker:\n    image: local/python:3.11\n    command: sleep 60\n"
    stack.commit("no-web", **{"docker-compose.yml": quiet})
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})

    failed = await deploy(docker_platform, app)

    assert failed["status"] == "failed"
    assert "names no web service" in failed["last_error"]


async def test_a_compose_image_that_is_not_local_fails_without_pulling(
    docker_platform: Platform, stack: Stack
) -> None:
    stack.commit(
        "remote", **{"docker-compose.yml": COMPOSE.replace("local/python:3.11", "nowhere/api:9")}
    )
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})

    failed = await deploy(docker_platform, app)

    assert failed["status"] == "failed"
    assert "'nowhere/api:9' is not on the Docker Engine" in failed["last_error"]


async def test_the_process_runtime_fails_a_compose_app_saying_it_needs_docker(
    settings: Settings, caddy_installed: None, tmp_path: Path
) -> None:
    stack = Stack(tmp_path / "plain", "plain")
    async for platform in make_platform(settings, "process"):
        app = await platform.app("plain", repository={"clone_url": stack.path.as_uri()})

        failed = await deploy(platform, app)

        assert failed["status"] == "failed"
        assert failed["last_error"].startswith("compose apps need Docker")


def test_a_killed_server_brings_the_half_deployed_project_down_and_keeps_the_old_one(
    settings: Settings, tmp_path: Path, stack: Stack, caddy_installed: None, docker_client: Any
) -> None:
    import signal
    import time

    import httpx

    from tests.deployments.conftest import free_port
    from tests.smoke.conftest import Server

    http_port = free_port()
    server = Server(
        settings,
        tmp_path / "server.log",
        {
            "SHIPYARD_RUNTIME": "docker",
            "SHIPYARD_PROXY_TLS": "off",
            "SHIPYARD_PROXY_HTTP_PORT": str(http_port),
            "SHIPYARD_PROXY_HTTPS_PORT": str(free_port()),
            "SHIPYARD_PROXY_BIND_HOST": "127.0.0.1",
            "SHIPYARD_CADDY_ADMIN_ADDRESS": f"127.0.0.1:{free_port()}",
        },
    )

    def wait(c: httpx.Client, h: dict[str, str], app_id: str, dep: str, done: Any) -> Any:
        for _ in range(1800):
            body = c.get(f"/api/v1/apps/{app_id}/deployments/{dep}", headers=h).json()
            if done(body):
                return body
            time.sleep(0.1)
        raise AssertionError(body)

    finished = lambda body: body["status"] in ("healthy", "failed")  # noqa: E731
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            token = c.post("/api/v1/tokens", json={"name": "r", "scopes": ["admin"]}).json()
            h = {"Authorization": f"Bearer {token['token']}"}
            body = {"name": stack.name, "repository": {"clone_url": stack.path.as_uri()}}
            app = c.post("/api/v1/apps", json=body, headers=h).json()
            deploy = lambda: c.post(  # noqa: E731
                f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h
            ).json()["deployment_id"]
            assert wait(c, h, app["id"], deploy(), finished)["status"] == "healthy"
            (first,) = projects(docker_client, stack.name)
            stack.commit("v2", **{"web/server.py": "import time\ntime.sleep(300)\n" + WEB})
            second = deploy()
            wait(
                c,
                h,
                app["id"],
                second,
                lambda b: any(
                    s["name"] == "health" and s["status"] == "running" for s in b["steps"]
                ),
            )
        assert len(projects(docker_client, stack.name)) == 2
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            done = wait(c, h, app["id"], second, finished)
            assert done["status"] == "failed" and "interrupted" in done["last_error"]
            assert projects(docker_client, stack.name) == {first}
            served = httpx.get(
                f"http://127.0.0.1:{http_port}/", headers={"Host": stack.host}, timeout=10
            )
            assert served.text == "WEB=v1 API=pong BOOTS=1 GREETING="
            assert c.delete(f"/api/v1/apps/{app['id']}", headers=h).status_code == 204
            for _ in range(100):
                if not projects(docker_client, stack.name):
                    break
                time.sleep(0.1)
    finally:
        server.stop()
