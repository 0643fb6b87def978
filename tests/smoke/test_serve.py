"""The README tour against a real `shipyard serve` process, and a restart that keeps everything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from shipyard.config import Settings
from tests.smoke.conftest import SHIPYARD, Server, server_env


def test_tour(server: Server) -> None:
    created = subprocess.run(
        [
            SHIPYARD,
            "admin",
            "create",
            "--email",
            "ops@example.com",
            "--password",
            "a long password",
        ],
        env=server_env(server.settings),
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=server.url) as c:
        login = c.post(
            "/api/v1/auth/login", json={"email": "ops@example.com", "password": "a long password"}
        )
        assert login.status_code == 200
        token = c.post("/api/v1/tokens", json={"name": "cli", "scopes": ["admin"]}).json()["token"]
        c.cookies.clear()
        h = {"Authorization": f"Bearer {token}"}
        app = c.post(
            "/api/v1/apps", json={"name": "hello", "image_ref": "nginx:1.27"}, headers=h
        ).json()
        assert (
            c.put(
                f"/api/v1/apps/{app['id']}/env", json={"key": "GREETING", "value": "hi"}, headers=h
            ).status_code
            == 200
        )
        assert (
            c.post(
                f"/api/v1/apps/{app['id']}/domains", json={"domain": "hello.example.com"}, headers=h
            ).status_code
            == 201
        )
        listed = c.get("/api/v1/apps", headers=h)
        assert [a["name"] for a in listed.json()["items"]] == ["hello"]
        assert c.get("/api/v1/apps").status_code == 401


def test_everything_survives_a_restart(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        token = c.post("/api/v1/tokens", json={"name": "root", "scopes": ["admin"]}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        app = c.post("/api/v1/apps", json={"name": "kept"}, headers=h).json()
        c.put(f"/api/v1/apps/{app['id']}/env", json={"key": "SECRET", "value": "s3"}, headers=h)
    server.stop()
    server.start()
    with httpx.Client(base_url=server.url) as c:
        env = c.get(f"/api/v1/apps/{app['id']}/env?reveal=true", headers=h)
        assert [(i["key"], i["value"]) for i in env.json()["items"]] == [("SECRET", "s3")]


def test_first_admin_from_the_environment(settings: Settings, tmp_path: Path) -> None:
    admin_env = {
        "SHIPYARD_ADMIN_EMAIL": "first@example.com",
        "SHIPYARD_ADMIN_PASSWORD": "first admin password",
    }
    srv = Server(settings, tmp_path / "log", admin_env)
    srv.start()
    try:
        r = httpx.post(
            f"{srv.url}/api/v1/auth/login",
            json={"email": "first@example.com", "password": "first admin password"},
        )
        assert r.status_code == 200 and r.json()["role"] == "admin"
        # A user exists, so bootstrap is closed even for loopback.
        token = httpx.post(f"{srv.url}/api/v1/tokens", json={"name": "x", "scopes": ["read"]})
        assert token.status_code == 401
    finally:
        srv.stop()
