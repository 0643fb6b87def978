"""RustCI GitHub webhook: signatures (GitHub's published vector, wrong, missing), replays, push
and pull_request triggers, and pipelines read from the repository on push."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any

from shipyard.webhooks.github import signature_matches
from tests.dialects.rustci.conftest import CI, git_repo, stage, step
from tests.dialects.rustci.test_workspaces import assert_rustci_error

SECRET = "hook-secret"


def test_githubs_published_test_vector() -> None:
    # docs.github.com "Validating webhook deliveries": this secret, payload and signature.
    assert signature_matches(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _send(
    ci: CI,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str = "d1",
    signature: str | None = "auto",
) -> Any:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }
    if signature == "auto":
        headers["X-Hub-Signature-256"] = _sign(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return await ci.api.client.post("/v1/webhooks/github", content=body, headers=headers)


def _push(repo: str, branch: str = "main", after: str = "0" * 40) -> dict[str, Any]:
    return {"ref": f"refs/heads/{branch}", "after": after, "repository": {"clone_url": repo}}


async def _setup(ci: CI, repo: str, triggers: list[str]) -> dict[str, Any]:
    ws = await ci.workspace(repo, webhook_secret=SECRET)
    return await ci.pipeline(ws["id"], [stage("s", step("x", "true"))], triggers=triggers)


def _head(repo: str) -> str:
    return subprocess.run(
        ["git", "-C", repo.removeprefix("file://"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def test_push_starts_matching_pipelines(ci: CI, repo: str) -> None:
    p = await _setup(ci, repo, ["push"])
    r = await _send(ci, "push", _push(repo, after=_head(repo)))
    assert r.status_code == 200
    assert r.json() == {"message": "Webhook processed successfully", "executions_triggered": 1}
    got = await ci.request("GET", f"/api/pipelines/{p['id']}")
    execution = got.json()["last_execution"]
    done = await ci.wait(execution["id"])
    assert (
        done["trigger"] == "push"
        and done["commit_sha"] == _head(repo)
        and done["status"] == "completed"
    )


async def test_push_to_another_branch_starts_nothing(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["push"])
    r = await _send(ci, "push", _push(repo, branch="feature"))
    assert r.json()["executions_triggered"] == 0


async def test_pipelines_without_the_trigger_do_not_run(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["manual"])
    assert (await _send(ci, "push", _push(repo, after=_head(repo)))).json()[
        "executions_triggered"
    ] == 0


async def test_pull_request_against_the_branch(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["pull_request"])
    payload = {
        "action": "opened",
        "pull_request": {"base": {"ref": "main"}, "head": {"ref": "feature", "sha": _head(repo)}},
        "repository": {"clone_url": repo},
    }
    assert (await _send(ci, "pull_request", payload)).json()["executions_triggered"] == 1


async def test_wrong_signature_is_refused(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["push"])
    r = await _send(ci, "push", _push(repo), signature=_sign(b"other body"))
    assert_rustci_error(r, 401, "AuthenticationError")


async def test_missing_signature_is_refused(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["push"])
    assert_rustci_error(
        await _send(ci, "push", _push(repo), signature=None), 401, "AuthenticationError"
    )


async def test_a_workspace_without_secret_refuses_webhooks(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    await ci.pipeline(ws["id"], [stage("s", step("x", "true"))], triggers=["push"])
    r = await _send(ci, "push", _push(repo))
    error = assert_rustci_error(r, 401, "AuthenticationError")
    assert "webhook_secret" in error["message"]


async def test_a_replayed_delivery_is_ignored(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["push"])
    first = await _send(ci, "push", _push(repo, after=_head(repo)), delivery="same")
    again = await _send(ci, "push", _push(repo, after=_head(repo)), delivery="same")
    assert first.json()["executions_triggered"] == 1
    assert again.json() == {"message": "duplicate delivery ignored", "executions_triggered": 0}


async def test_ping(ci: CI, repo: str) -> None:
    await _setup(ci, repo, ["push"])
    assert (await _send(ci, "ping", {"zen": "hi", "repository": {"clone_url": repo}})).json()[
        "message"
    ] == "pong"


async def test_push_reads_pipelines_from_the_repository(ci: CI, tmp_path: Path) -> None:
    pipeline_yaml = (
        "stages:\n  - name: build\n    steps:\n      - name: hello\n"
        "        command: echo from-yaml\ntriggers: [push]\n"
    )
    manifest = (
        "pipelines:\n  - name: from-manifest\n    stages:\n      - name: s\n"
        "        steps:\n          - {name: t, command: 'true'}\n"
    )
    repo = git_repo(
        tmp_path / "r", {".shipyard/pipelines/ci.yaml": pipeline_yaml, "shipyard.yaml": manifest}
    )
    ws = await ci.workspace(repo, webhook_secret=SECRET)
    r = await _send(ci, "push", _push(repo, after=_head(repo)))
    listed = await ci.request("GET", f"/api/workspaces/{ws['id']}/pipelines")
    assert r.json() == {"message": "Webhook processed successfully", "executions_triggered": 1}, (
        listed.text
    )
    names = {p["name"]: p for p in listed.json()["pipelines"]}
    assert set(names) == {"ci", "from-manifest"} and names["ci"]["source"] == "repository"
    done = await ci.wait(
        (await ci.request("GET", f"/api/pipelines/{names['ci']['id']}")).json()["last_execution"][
            "id"
        ]
    )
    logs = await ci.logs(done["id"], "build", "hello")
    assert logs["logs"][-1]["message"] == "from-yaml"


async def test_sync_endpoint_reports_invalid_repository_pipelines(ci: CI, tmp_path: Path) -> None:
    bad = "stages:\n  - name: a\n    steps: []\n"
    repo = git_repo(tmp_path / "r", {".shipyard/pipelines/bad.yaml": bad})
    ws = await ci.workspace(repo)
    r = await ci.request("POST", f"/api/workspaces/{ws['id']}/sync")
    error = assert_rustci_error(r, 422, "ValidationError")
    assert error["details"]["field"] == "stages[0].steps"  # type: ignore[index]
