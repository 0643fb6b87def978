"""wss /v1/ws/executions/{id}: every transition in order, against a real `shipyard serve`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from shipyard.config import Settings
from tests.dialects.rustci.conftest import git_repo
from tests.smoke.conftest import Server


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    srv = Server(settings, tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()


def _setup(server: Server, repo: str, stages: list[dict[str, Any]]) -> tuple[str, str]:
    with httpx.Client(base_url=server.url) as c:
        token = c.post("/api/v1/tokens", json={"name": "root", "scopes": ["admin"]}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        ws = c.post(
            "/v1/api/workspaces", json={"name": "w", "repository_url": repo}, headers=h
        ).json()
        p = c.post(
            f"/v1/api/workspaces/{ws['id']}/pipelines",
            json={"name": "p", "stages": stages},
            headers=h,
        )
        ex = c.post(
            f"/v1/api/pipelines/{p.json()['id']}/executions", json={"trigger": "manual"}, headers=h
        )
        return token, ex.json()["id"]


async def _collect(url: str) -> list[dict[str, Any]]:
    messages = []
    async with websockets.connect(url) as socket:
        async for raw in socket:
            messages.append(json.loads(raw))
    return messages


async def test_every_transition_arrives_in_order(live: Server, tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", {"a.txt": "a"})
    stages = [
        {
            "name": "build",
            "steps": [{"name": "one", "command": "sleep 0.2"}, {"name": "two", "command": "true"}],
        },
        {"name": "test", "steps": [{"name": "unit", "command": "true"}], "depends_on": ["build"]},
    ]
    token, execution = _setup(live, repo, stages)
    ws_url = live.url.replace("http://", "ws://") + f"/v1/ws/executions/{execution}?token={token}"
    messages = await asyncio.wait_for(_collect(ws_url), 30)
    seen = [(m["data"]["status"], m["data"]["stage"], m["data"]["step"]) for m in messages]
    assert {m["type"] for m in messages} == {"execution_update"}
    assert seen == [
        ("running", None, None),
        ("running", "build", "one"),
        ("completed", "build", "one"),
        ("running", "build", "two"),
        ("completed", "build", "two"),
        ("running", "test", "unit"),
        ("completed", "test", "unit"),
        ("completed", None, None),
    ]
    assert all(m["data"]["execution_id"] == execution for m in messages)


async def test_a_bad_token_closes_with_policy_violation(live: Server, tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", {"a.txt": "a"})
    _, execution = _setup(live, repo, [{"name": "s", "steps": [{"name": "x", "command": "true"}]}])
    url = live.url.replace("http://", "ws://") + f"/v1/ws/executions/{execution}?token=wrong"
    async with websockets.connect(url) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
