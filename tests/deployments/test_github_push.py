"""Import a repository, connect it to GitHub, push: the pushed commit serves through Caddy."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.deployments.conftest import Platform, Source

SECRET = "e2e-webhook-secret"


@pytest.mark.parametrize("platform", ["process"], indirect=True)
async def test_a_signed_push_deploys_the_pushed_commit(platform: Platform, source: Source) -> None:
    client, headers = platform.api.client, platform.headers
    r = await client.post(
        "/api/v1/apps/import",
        json={"repository": {"clone_url": source.url}, "name": "hello"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["detection"]["build_profile"] == "python"
    app_id = r.json()["app"]["id"]
    r = await client.post(
        f"/api/v1/apps/{app_id}/github",
        json={"owner": "acme", "repo": "hello", "branch": "main", "webhook_secret": SECRET},
        headers=headers,
    )
    assert r.status_code == 200, r.text

    pushed = source.commit("v2")
    source.commit("v3")  # the branch moved on; the webhook names the commit to deploy
    body = json.dumps(
        {"ref": "refs/heads/main", "after": pushed, "repository": {"full_name": "acme/hello"}}
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = await client.post(
        "/api/v1/integrations/github/webhook",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "e2e-1",
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["queued_deployments"] == 1

    deployments = (await client.get(f"/api/v1/apps/{app_id}/deployments", headers=headers)).json()
    [deployment] = deployments["items"]
    done = await platform.wait(app_id, deployment["id"])
    assert done["status"] == "healthy", await platform.logs(app_id, deployment["id"])
    assert done["commit_sha"] == pushed and done["trigger"] == "github"
    assert (await platform.get("hello.localhost")).text.startswith("VERSION=v2")
