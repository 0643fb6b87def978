"""GET /api/v1/apps/{id}/logs/stream?source=runtime: what the running app prints, redacted and
lossily decoded, against a real `shipyard serve`; the stream ends when the server stops."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from tests.deployments.conftest import Source
from tests.smoke.conftest import Server

# Prints a line per request, and at start a line that is not valid UTF-8.
APP_PY = """import os, sys, http.server
sys.stdout.buffer.write(b'started \\xff here\\n'); sys.stdout.flush()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *a): print('request', self.path, flush=True)
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"""


def events(response: httpx.Response, deadline: float) -> Iterator[dict[str, Any]]:
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            yield current
            current = {}
        if time.monotonic() > deadline:
            return


@dataclass
class Deployed:
    headers: dict[str, str]
    app_id: str
    deployment_id: str
    upstream: str  # the instance's own address


@contextlib.contextmanager
def deployed(server: Server, source: Source) -> Iterator[Deployed]:
    """A healthy deployment of APP_PY; the app is deleted (its instances stopped) afterwards."""
    source.commit("v1", **{"app.py": APP_PY})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.post("/api/v1/tokens", json={"name": "r", "scopes": ["admin"]}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        app = c.post(
            "/api/v1/apps",
            json={
                "name": "web",
                "repository": {"clone_url": source.url},
                "runtime": {"port": 8080},
            },
            headers=h,
        ).json()
        c.put(
            f"/api/v1/apps/{app['id']}/env",
            json={"key": "TOKEN", "value": "s3cr3t-v4lue"},
            headers=h,
        )
        dep = c.post(f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h).json()[
            "deployment_id"
        ]
        for _ in range(1200):
            body = c.get(f"/api/v1/apps/{app['id']}/deployments/{dep}", headers=h).json()
            if body["status"] in ("healthy", "failed"):
                break
            time.sleep(0.1)
        logs = c.get(f"/api/v1/apps/{app['id']}/deployments/{dep}/logs", headers=h).json()["logs"]
    upstream = re.findall(r"started \S+ at (127\.0\.0\.1:\d+)", logs)
    try:
        assert body["status"] == "healthy", logs
        yield Deployed(h, app["id"], dep, upstream[-1])
    finally:
        if server.proc is not None and server.proc.poll() is None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                c.delete(f"/api/v1/apps/{app['id']}", headers=h)
            # The teardown job removes the git mirror last, after the instance and its image.
            mirror = server.settings.resolved_data_dir / "git" / "apps" / app["id"]
            for _ in range(300):
                if not mirror.exists():
                    break
                time.sleep(0.1)


@pytest.fixture(params=["process", "docker"])
def server(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Server]:
    if request.param == "docker":
        request.getfixturevalue("docker_image")
    env = {"SHIPYARD_RUNTIME": request.param, "SHIPYARD_PROXY_ENABLED": "false"}
    srv = Server(settings, tmp_path / "server.log", env)
    srv.start()
    yield srv
    srv.stop()


def test_the_stream_shows_what_the_app_prints_with_secrets_masked(
    server: Server, source: Source
) -> None:
    def visit(upstream: str) -> None:
        for _ in range(20):
            time.sleep(0.5)
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://{upstream}/path/s3cr3t-v4lue", timeout=5)

    seen: list[dict[str, Any]] = []
    with deployed(server, source) as app:
        threading.Thread(target=visit, args=(app.upstream,), daemon=True).start()
        url = f"{server.url}/api/v1/apps/{app.app_id}/logs/stream?source=runtime"
        with httpx.stream("GET", url, headers=app.headers, timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for event in events(r, time.monotonic() + 30):
                seen.append(event)
                if "request /path/" in event["data"]["logs"]:
                    break
    first = seen[0]["data"]
    assert first["reset"] is True and first["deployment_id"] == app.deployment_id
    assert "started \ufffd here" in first["logs"]
    requests = [e["data"]["logs"] for e in seen if "request /path/" in e["data"]["logs"]]
    assert requests and "request /path/********" in requests[0]
    assert not any("s3cr3t-v4lue" in e["data"]["logs"] for e in seen)


def test_stopping_the_server_ends_the_stream(
    settings: Settings, tmp_path: Path, source: Source
) -> None:
    env = {"SHIPYARD_RUNTIME": "process", "SHIPYARD_PROXY_ENABLED": "false"}
    srv = Server(settings, tmp_path / "server.log", env)
    srv.start()
    try:
        with deployed(srv, source) as app:
            url = f"{srv.url}/api/v1/apps/{app.app_id}/logs/stream?source=runtime"
            with httpx.stream("GET", url, headers=app.headers, timeout=30) as r:
                stream = events(r, time.monotonic() + 30)
                assert next(stream)["data"]["reset"] is True
                assert srv.proc is not None
                srv.proc.send_signal(signal.SIGTERM)
                started = time.monotonic()
                assert list(stream) == []  # the server ended the response
                assert time.monotonic() - started < 5
            srv.proc.wait(10)  # uvicorn re-raises SIGTERM once it has shut down
            srv.start()  # so that the app can be deleted
    finally:
        srv.stop()
