"""GET /api/v1/apps/{id}/logs/stream: SSE `logs` events with JSON payloads, reset snapshots and
Last-Event-ID resume, against a real `shipyard serve`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from shipyard.config import Settings
from tests.smoke.conftest import Server


def _events(
    server: Server, app_id: str, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """Read ``count`` SSE events (bounded in time)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    with httpx.stream(
        "GET", f"{server.url}/api/v1/apps/{app_id}/logs/stream", headers=headers, timeout=20
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
                if len(events) >= count:
                    break
            if time.monotonic() > deadline:
                break
    return events


def test_stream_sends_a_reset_snapshot_then_resumes_after_last_event_id(
    settings: Settings, tmp_path: Path
) -> None:
    server = Server(settings, tmp_path / "log", {"SHIPYARD_RUNTIME": "process"})
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            token = c.post("/api/v1/tokens", json={"name": "r", "scopes": ["admin"]}).json()[
                "token"
            ]
            h = {"Authorization": f"Bearer {token}"}
            missing = (tmp_path / "no-such-repo").as_uri()
            app = c.post(
                "/api/v1/apps",
                json={"name": "web", "repository": {"clone_url": missing}},
                headers=h,
            ).json()
            dep = c.post(f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h).json()[
                "deployment_id"
            ]
            for _ in range(200):
                if (
                    c.get(f"/api/v1/apps/{app['id']}/deployments/{dep}", headers=h).json()["status"]
                    == "failed"
                ):
                    break
                time.sleep(0.1)
        [first] = _events(server, app["id"], h, 1)
        assert first["event"] == "logs" and first["data"]["reset"] is True
        assert first["data"]["deployment_id"] == dep and "==> fetch" in first["data"]["logs"]
        assert first["id"].startswith(f"{dep}:")
        resumed = _events(server, app["id"], {**h, "Last-Event-ID": first["id"]}, 1)
        assert resumed == [] or (
            resumed[0]["data"]["reset"] is False and resumed[0]["data"]["logs"] == ""
        )
    finally:
        server.stop()


def test_a_viewer_connected_before_the_deployment_gets_every_line_once_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.deployments.conftest import git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    # Several batches of the log writer, then a failed build: no proxy is needed.
    (repo / "shipyard.yaml").write_text(
        "build: python3 -c \"[print('line', i) for i in range(3500)]\" && exit 1\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "lines")
    server = Server(settings, tmp_path / "log", {"SHIPYARD_RUNTIME": "process"})
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            made = c.post("/api/v1/tokens", json={"name": "r", "scopes": ["admin"]})
            assert made.status_code == 201, made.text
            token = made.json()["token"]
            h = {"Authorization": f"Bearer {token}"}
            app = c.post(
                "/api/v1/apps",
                json={"name": "web", "repository": {"clone_url": repo.as_uri()}},
                headers=h,
            ).json()
            received: list[str] = []
            deadline = time.monotonic() + 60
            with httpx.stream(
                "GET", f"{server.url}/api/v1/apps/{app['id']}/logs/stream", headers=h, timeout=30
            ) as r:
                lines = r.iter_lines()
                assert next(lines).startswith("id: -:0")  # no deployment yet
                c.post(f"/api/v1/apps/{app['id']}/deployments", json={}, headers=h)
                for line in lines:
                    data = json.loads(line[6:]) if line.startswith("data: ") else {}
                    if data.get("deployment_id") and data["logs"]:  # not a reset with no line
                        received += data["logs"].split("\n")
                    if any(x.startswith("build failed") for x in received[-3:]):
                        break
                    assert time.monotonic() < deadline, received[-3:]
        printed = [x for x in received if x.startswith("line ")]
        assert printed == [f"line {i}" for i in range(3500)]
        assert received[0] == "==> fetch"
    finally:
        server.stop()
