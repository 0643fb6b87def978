"""Kill `shipyard serve` in the middle of a deployment and start it again: the old release keeps
serving, the deployment ends failed with its reason, and no row is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from shipyard.config import Settings
from tests.deployments.conftest import Source, free_port
from tests.smoke.conftest import Server


def _wait(
    c: httpx.Client, h: dict[str, str], app_id: str, dep: str, want: set[str]
) -> dict[str, object]:
    for _ in range(1200):
        body = c.get(f"/api/v1/apps/{app_id}/deployments/{dep}", headers=h).json()
        if body["status"] in want:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(body)


def test_a_killed_server_fails_the_running_deployment_and_keeps_the_old_release(
    settings: Settings, tmp_path: Path, source: Source, caddy_installed: None
) -> None:
    http_port = free_port()
    env = {
        "SHIPYARD_RUNTIME": "process",
        "SHIPYARD_PROXY_TLS": "off",
        "SHIPYARD_PROXY_HTTP_PORT": str(http_port),
        "SHIPYARD_PROXY_HTTPS_PORT": str(free_port()),
        "SHIPYARD_PROXY_BIND_HOST": "127.0.0.1",
        "SHIPYARD_CADDY_ADMIN_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    server = Server(settings, tmp_path / "server.log", env)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            h = {
                "Authorization": "Bearer "
                + c.post("/api/v1/tokens", json={"name": "r", "scopes": ["admin"]}).json()["token"]
            }
            app = c.post(
                "/api/v1/apps",
                json={
                    "name": "web",
                    "repository": {"clone_url": source.url},
                    "runtime": {"port": 8080},
                },
                headers=h,
            ).json()
            first = c.post(f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h).json()[
                "deployment_id"
            ]
            assert _wait(c, h, app["id"], first, {"healthy", "failed"})["status"] == "healthy"
            source.commit("v2", **{"shipyard.yaml": "build: sleep 120\nstart: python3 app.py\n"})
            second = c.post(f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h).json()[
                "deployment_id"
            ]
            _wait(c, h, app["id"], second, {"deploying"})
            time.sleep(2)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            done = _wait(c, h, app["id"], second, {"failed", "healthy"})
            assert done["status"] == "failed" and "interrupted" in str(done["last_error"])
            listed = c.get(f"/api/v1/apps/{app['id']}/deployments", headers=h).json()["items"]
            assert {d["id"] for d in listed} == {first, second}
        served = httpx.get(
            f"http://127.0.0.1:{http_port}/", headers={"Host": "web.localhost"}, timeout=10
        )
        assert served.text.startswith("VERSION=v1")
        with httpx.Client(base_url=server.url, timeout=30) as c:  # stop the app's instances
            assert c.delete(f"/api/v1/apps/{app['id']}", headers=h).status_code == 204
            time.sleep(3)
    finally:
        server.stop()
