"""RustCI helpers: a JWT for a user, a local git repository, a workspace and pipeline factory."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, Api


def git_repo(path: Path, files: dict[str, str], branch: str = "main") -> str:
    """A local repository with one commit holding ``files``; returns its file:// URL."""
    path.mkdir(parents=True, exist_ok=True)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "HOME": str(path),
    }
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, env=env)
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "init"], check=True, env=env)
    return path.as_uri()


class CI:
    """Drives the RustCI API as one user."""

    def __init__(self, api: Api, token: str) -> None:
        self.api, self.token = api, token
        self.headers = {"Authorization": f"Bearer {token}"}

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        return await self.api.client.request(method, f"/v1{path}", headers=self.headers, **kw)

    async def workspace(self, repo_url: str, name: str = "ws", **extra: Any) -> dict[str, Any]:
        r = await self.request(
            "POST", "/api/workspaces", json={"name": name, "repository_url": repo_url, **extra}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def pipeline(
        self, workspace_id: str, stages: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        body = {"name": extra.pop("name", "p"), "stages": stages, **extra}
        r = await self.request("POST", f"/api/workspaces/{workspace_id}/pipelines", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def start(self, pipeline_id: str, **body: Any) -> dict[str, Any]:
        r = await self.request(
            "POST", f"/api/pipelines/{pipeline_id}/executions", json={"trigger": "manual", **body}
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    async def wait(self, execution_id: str, timeout: float = 60) -> dict[str, Any]:
        for _ in range(int(timeout / 0.05)):
            r = await self.request("GET", f"/api/executions/{execution_id}")
            if r.json()["status"] in ("completed", "failed", "cancelled"):
                return dict(r.json())
            await asyncio.sleep(0.05)
        raise AssertionError(f"execution still {r.json()['status']} after {timeout} s")

    async def logs(self, execution_id: str, stage: str, step: str, **params: Any) -> dict[str, Any]:
        r = await self.request(
            "GET", f"/api/executions/{execution_id}/logs/{stage}/{step}", params=params
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


def step(name: str, command: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": command, **extra}


def stage(name: str, *steps: dict[str, Any], depends_on: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "steps": list(steps), "depends_on": depends_on or []}


async def jwt_for(api: Api, email: str) -> str:
    r = await api.client.post("/v1/auth/token", json={"email": email, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


@pytest.fixture
async def ci(api: Api) -> CI:
    await api.user("dev@example.com")
    return CI(api, await jwt_for(api, "dev@example.com"))


@pytest.fixture
async def ci_other(api: Api) -> CI:
    await api.user("stranger@example.com")
    return CI(api, await jwt_for(api, "stranger@example.com"))


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return git_repo(tmp_path / "repo", {"README.md": "hello\n", "script.sh": "echo from-repo\n"})
