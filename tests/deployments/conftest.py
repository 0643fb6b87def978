"""Deployments end to end: a real git repository, a real runtime and a real Caddy."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shipyard.app import create_app
from shipyard.config import Settings
from tests.conftest import SCRIPTS, Api

APP_PY = """import os, http.server
VERSION = open('version.txt').read().strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('VERSION=' + VERSION + ' GREETING=' + os.environ.get('GREETING', '')).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): print('request', self.path, flush=True)
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


class Source:
    """A local git repository holding a tiny Python web app; ``commit`` changes what it serves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        (path / "app.py").write_text(APP_PY)
        self.commit("v1")

    def commit(self, version: str, **files: str) -> str:
        (self.path / "version.txt").write_text(version + "\n")
        for name, content in files.items():
            (self.path / name).write_text(content)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", version)
        return git(self.path, "rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return self.path.as_uri()


@pytest.fixture(scope="session")
def caddy_installed() -> None:
    subprocess.run([SCRIPTS / "ensure-caddy"], check=True)


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return Source(tmp_path / "src")


class Platform:
    """The API plus the proxy's address, as a deploying user sees them."""

    def __init__(self, api: Api, http_port: int) -> None:
        self.api, self.http_port = api, http_port
        self.headers: dict[str, str] = {}
        self.ctx: Any = None  # the server's AppContext, for waiting on its engine

    async def setup(self) -> None:
        self.headers = (await self.api.root()).headers

    async def app(self, name: str, **fields: Any) -> dict[str, Any]:
        r = await self.api.client.post(
            "/api/v1/apps", json={"name": name, **fields}, headers=self.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def deploy(self, app_id: str, **body: Any) -> str:
        r = await self.api.client.post(
            f"/api/v1/apps/{app_id}/deployments", json=body, headers=self.headers
        )
        assert r.status_code == 202, r.text
        return str(r.json()["deployment_id"])

    async def wait(self, app_id: str, deployment_id: str, timeout: float = 120) -> dict[str, Any]:
        for _ in range(int(timeout / 0.1)):
            r = await self.api.client.get(
                f"/api/v1/apps/{app_id}/deployments/{deployment_id}", headers=self.headers
            )
            if r.json()["status"] in ("healthy", "failed"):
                return dict(r.json())
            await asyncio.sleep(0.1)
        raise AssertionError(f"deployment still {r.json()['status']}: {r.text}")

    async def logs(self, app_id: str, deployment_id: str) -> str:
        r = await self.api.client.get(
            f"/api/v1/apps/{app_id}/deployments/{deployment_id}/logs", headers=self.headers
        )
        return str(r.json()["logs"])

    async def delete_all(self, ctx: Any) -> None:
        """Delete every app (which stops its instances) and wait for the teardown jobs."""
        from sqlalchemy import func, select

        from shipyard.models import Job

        apps = (await self.api.client.get("/api/v1/apps", headers=self.headers)).json()["items"]
        for app in apps:
            await self.api.client.delete(f"/api/v1/apps/{app['id']}", headers=self.headers)
        for _ in range(300):
            async with ctx.database.reading() as session:
                pending = await session.scalar(
                    select(func.count()).select_from(Job).where(Job.state.in_(("queued", "leased")))
                )
            if not pending:
                return
            await asyncio.sleep(0.1)

    async def get(self, host: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(
                f"http://127.0.0.1:{self.http_port}/", headers={"Host": host}, timeout=10
            )


async def make_platform(
    settings: Settings,
    runtime: str,
    *,
    delete_apps: bool = True,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Platform]:
    """The platform; with ``delete_apps=False`` its apps outlive it, and a later platform on the
    same settings (given the first one's ``headers``) finds them, as after a restart."""
    http_port = free_port()
    configured = settings.model_copy(
        update={
            "runtime": runtime,
            "proxy_tls": "off",
            "proxy_http_port": http_port,
            "proxy_https_port": free_port(),
            "proxy_bind_host": "127.0.0.1",
            "caddy_admin_address": f"127.0.0.1:{free_port()}",
            "drain_seconds": 0.3,
            "stop_grace_seconds": 2.0,
        }
    )
    application = create_app(configured)
    async with LifespanManager(application, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 7))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", timeout=30
        ) as client:
            platform = Platform(Api(client), http_port)
            platform.ctx = application.state.ctx
            if headers is None:
                await platform.setup()
            else:
                platform.headers = headers
            try:
                yield platform
            finally:
                if delete_apps:
                    await platform.delete_all(application.state.ctx)


@pytest.fixture(params=["process", "docker"])
async def platform(
    request: pytest.FixtureRequest, settings: Settings, caddy_installed: None
) -> AsyncIterator[Platform]:
    if request.param == "docker":
        request.getfixturevalue("docker_image")
    async for p in make_platform(settings, request.param):
        yield p
