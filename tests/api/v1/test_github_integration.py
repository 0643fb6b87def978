"""POST /api/v1/apps/{app_id}/github and POST /api/v1/integrations/github/webhook: connecting an
app to a GitHub branch, and the signed webhook that deploys it on push."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from shipyard.config import Settings
from shipyard.models import AuditEvent, GithubIntegration
from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope, assert_matches_contract

SECRET = "hook-secret-0123456789"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
WEBHOOK = "/api/v1/integrations/github/webhook"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Queued deployments fail at fetch (the repository does not exist); no proxy, no Docker.
    return settings.model_copy(update={"runtime": "process", "proxy_enabled": False})


async def connect(api: Api, actor: Actor, app_id: str, **body: Any) -> httpx.Response:
    fields = {"owner": "acme", "repo": "hello", "branch": "main", **body}
    return await api.client.post(
        f"/api/v1/apps/{app_id}/github", json=fields, headers=actor.headers
    )


async def connected_app(api: Api, actor: Actor, name: str = "web", **body: Any) -> str:
    app = await api.create_app(actor, name, repository={"clone_url": "file:///nonexistent/hello"})
    r = await connect(api, actor, app["id"], **{"webhook_secret": SECRET, **body})
    assert r.status_code == 200, r.text
    return str(app["id"])


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push(branch: str = "main", sha: str = SHA, full_name: str = "acme/hello") -> dict[str, Any]:
    return {"ref": f"refs/heads/{branch}", "after": sha, "repository": {"full_name": full_name}}


async def send(
    api: Api,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str = "delivery-1",
    signature: str | None = "valid",
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = sign(body) if signature == "valid" else signature
    headers["Content-Type"] = "application/json"
    return await api.client.post(WEBHOOK, content=body, headers=headers)


async def deployments(api: Api, actor: Actor, app_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/api/v1/apps/{app_id}/deployments", headers=actor.headers)
    return list(r.json()["items"])


# --- connect --------------------------------------------------------------------------------


async def test_connect_answers_the_summary_without_the_secret(
    api: Api, admin: Actor, app: FastAPI
) -> None:
    created = await api.create_app(admin, "web")
    r = await connect(api, admin, created["id"], installation_id=42, webhook_secret=SECRET)
    assert r.status_code == 200, r.text
    assert_matches_contract(r, "connectGithub")
    assert r.json() == {
        "app_id": created["id"],
        "owner": "acme",
        "repo": "hello",
        "branch": "main",
        "installation_id": 42,
        "webhook_secret_set": True,
    }
    async with app.state.ctx.database.reading() as session:
        stored = await session.get(GithubIntegration, created["id"])
    assert stored is not None and SECRET not in (stored.webhook_secret_ciphertext or "")


async def test_connecting_again_replaces_the_mapping_and_keeps_the_secret(
    api: Api, admin: Actor
) -> None:
    app_id = await connected_app(api, admin)
    r = await connect(api, admin, app_id, owner="Acme", repo="other.repo", branch="release/1")
    assert r.status_code == 200
    assert (r.json()["owner"], r.json()["repo"], r.json()["branch"]) == (
        "Acme",
        "other.repo",
        "release/1",
    )
    assert r.json()["webhook_secret_set"] is True and r.json()["installation_id"] is None


async def test_connect_without_a_secret_says_none_is_set(api: Api, admin: Actor) -> None:
    created = await api.create_app(admin, "web")
    r = await connect(api, admin, created["id"])
    assert r.json()["webhook_secret_set"] is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner", "-acme"),
        ("owner", "ac me"),
        ("repo", "he/llo"),
        ("repo", ".."),
        ("branch", "a..b"),
        ("branch", "-x"),
        ("branch", "feature branch"),
    ],
)
async def test_bad_names_are_400_naming_the_field(
    field: str, value: str, api: Api, admin: Actor
) -> None:
    created = await api.create_app(admin, "web")
    error = assert_error_envelope(await connect(api, admin, created["id"], **{field: value}), 400)
    assert error["details"][0]["field"] == field


async def test_another_users_app_is_404_and_a_read_token_403(
    api: Api, member: Actor, other: Actor
) -> None:
    created = await api.create_app(member, "web")
    assert_error_envelope(await connect(api, other, created["id"]), 404, "not_found")
    assert_error_envelope(await connect(api, other, "no-such-app"), 404, "not_found")
    reader = await api.token_for(member.email or "", ["read"])
    r = await api.client.post(
        f"/api/v1/apps/{created['id']}/github",
        json={"owner": "acme", "repo": "hello", "branch": "main"},
        headers={"Authorization": f"Bearer {reader[0]}"},
    )
    assert_error_envelope(r, 403, "forbidden")
    deployer = await api.token_for(member.email or "", ["deploy"])
    r = await api.client.post(
        f"/api/v1/apps/{created['id']}/github",
        json={"owner": "acme", "repo": "hello", "branch": "main"},
        headers={"Authorization": f"Bearer {deployer[0]}"},
    )
    assert r.status_code == 200


# --- webhook: refusals ----------------------------------------------------------------------


async def test_a_missing_signature_is_401(api: Api, admin: Actor) -> None:
    app_id = await connected_app(api, admin)
    r = await send(api, "push", push(), signature=None)
    assert_error_envelope(r, 401, "missing_signature")
    assert await deployments(api, admin, app_id) == []


async def test_a_wrong_signature_is_401(api: Api, admin: Actor) -> None:
    app_id = await connected_app(api, admin)
    body = json.dumps(push()).encode()
    for bad in (sign(body, "other-secret"), "sha256=" + "0" * 64, sign(body).upper(), "sha1=ab"):
        assert_error_envelope(await send(api, "push", push(), signature=bad), 401, "bad_signature")
    assert await deployments(api, admin, app_id) == []


async def test_an_app_without_a_secret_is_refused(api: Api, admin: Actor) -> None:
    created = await api.create_app(admin, "web", repository={"clone_url": "file:///none/x"})
    assert (await connect(api, admin, created["id"])).status_code == 200
    r = await send(api, "push", push())
    assert_error_envelope(r, 401, "no_webhook_secret")
    assert await deployments(api, admin, created["id"]) == []


async def test_a_repository_no_app_is_connected_to_is_refused_alike(api: Api, admin: Actor) -> None:
    await connected_app(api, admin)
    r = await send(api, "push", push(full_name="acme/unknown"))
    assert_error_envelope(r, 401, "no_webhook_secret")


async def test_a_body_that_is_not_json_is_400(api: Api, admin: Actor) -> None:
    await connected_app(api, admin)
    r = await api.client.post(
        WEBHOOK, content=b"payload=%7B%7D", headers={"X-Hub-Signature-256": sign(b"x")}
    )
    assert "application/json" in assert_error_envelope(r, 400)["message"]


# --- webhook: what is accepted --------------------------------------------------------------


async def test_ping_is_answered(api: Api, admin: Actor) -> None:
    await connected_app(api, admin)
    r = await send(
        api, "ping", {"zen": "Keep it simple.", "repository": {"full_name": "acme/hello"}}
    )
    assert r.status_code == 202
    assert_matches_contract(r, "githubWebhook")
    body = r.json()
    assert (body["accepted"], body["matched_integrations"], body["queued_deployments"]) == (
        True,
        1,
        0,
    )
    assert body["reason"].startswith("ping")


async def test_a_push_to_another_branch_is_ignored_with_the_reason(api: Api, admin: Actor) -> None:
    app_id = await connected_app(api, admin)
    r = await send(api, "push", push(branch="feature"))
    assert r.status_code == 202
    assert r.json()["queued_deployments"] == 0
    assert r.json()["reason"] == "push to 'feature' ignored: the connected branch is 'main'"
    assert await deployments(api, admin, app_id) == []


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("push", {**push(), "ref": "refs/tags/v1.0"}, "tag push (v1.0) does not deploy"),
        ("push", {**push(sha="0" * 40), "deleted": True}, "branch 'main' was deleted"),
        ("issues", push(), "event 'issues' does not deploy"),
    ],
)
async def test_other_deliveries_queue_nothing_and_say_why(
    event: str, payload: dict[str, Any], reason: str, api: Api, admin: Actor
) -> None:
    app_id = await connected_app(api, admin)
    r = await send(api, event, payload)
    assert r.status_code == 202
    assert r.json()["queued_deployments"] == 0 and reason in r.json()["reason"]
    assert await deployments(api, admin, app_id) == []


async def test_a_push_to_the_connected_branch_queues_that_commit(
    api: Api, admin: Actor, app: FastAPI
) -> None:
    app_id = await connected_app(api, admin)
    r = await send(api, "push", push(full_name="ACME/Hello"))  # GitHub names ignore case
    assert r.status_code == 202, r.text
    assert_matches_contract(r, "githubWebhook")
    assert r.json() == {
        "accepted": True,
        "matched_integrations": 1,
        "queued_deployments": 1,
        "reason": None,
    }
    [deployment] = await deployments(api, admin, app_id)
    assert deployment["commit_sha"] == SHA and deployment["trigger"] == "github"
    assert deployment["source_ref"] == "main"
    async with app.state.ctx.database.reading() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.via == "webhook"))).all()
    assert len(rows) == 1


async def test_a_replayed_delivery_is_ignored(api: Api, admin: Actor) -> None:
    app_id = await connected_app(api, admin)
    assert (await send(api, "push", push(), delivery="d-7")).json()["queued_deployments"] == 1
    again = await send(api, "push", push(sha="b" * 40), delivery="d-7")
    assert again.status_code == 202
    assert again.json()["accepted"] is False and again.json()["queued_deployments"] == 0
    assert "handled before" in again.json()["reason"]
    assert [d["commit_sha"] for d in await deployments(api, admin, app_id)] == [SHA]


async def test_every_app_connected_to_the_branch_deploys(api: Api, admin: Actor) -> None:
    first = await connected_app(api, admin, "one")
    second = await connected_app(api, admin, "two")
    elsewhere = await connected_app(api, admin, "three", branch="develop")
    r = await send(api, "push", push())
    assert (r.json()["matched_integrations"], r.json()["queued_deployments"]) == (3, 2)
    assert len(await deployments(api, admin, first)) == 1
    assert len(await deployments(api, admin, second)) == 1
    assert await deployments(api, admin, elsewhere) == []


async def test_only_integrations_whose_secret_signed_the_delivery_deploy(
    api: Api, admin: Actor
) -> None:
    mine = await connected_app(api, admin, "one")
    theirs = await connected_app(api, admin, "two", webhook_secret="a different secret")
    r = await send(api, "push", push())
    assert (r.json()["matched_integrations"], r.json()["queued_deployments"]) == (1, 1)
    assert len(await deployments(api, admin, mine)) == 1
    assert await deployments(api, admin, theirs) == []


async def test_an_app_that_cannot_deploy_is_named_in_the_reason(api: Api, admin: Actor) -> None:
    created = await api.create_app(admin, "bare")  # no source at all
    await connect(api, admin, created["id"], webhook_secret=SECRET)
    r = await send(api, "push", push())
    assert r.status_code == 202
    assert r.json()["queued_deployments"] == 0
    assert f"app {created['id']}: the app has no source" in r.json()["reason"]
