"""API tokens: shown once, hashed at rest, scoped, expiring, revocable, audited."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from shipyard.models import ApiToken, AuditEvent
from tests.conftest import Actor, Api, bearer
from tests.contract import assert_error_envelope, assert_matches_contract


async def test_bootstrap_token_over_loopback(api: Api) -> None:
    r = await api.client.post("/api/v1/tokens", json={"name": "first", "scopes": ["admin"]})
    assert r.status_code == 201
    assert_matches_contract(r, "createToken")
    assert r.json()["token"].startswith("sy_pat_")


async def test_bootstrap_is_refused_to_remote_clients(app: object) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote:
        r = await remote.post("/api/v1/tokens", json={"name": "first", "scopes": ["admin"]})
    error = assert_error_envelope(r, 401, "unauthorized")
    assert "shipyard admin create" in error["message"]


async def test_bootstrap_closes_once_a_token_exists(api: Api) -> None:
    await api.root()
    r = await api.client.post("/api/v1/tokens", json={"name": "second", "scopes": ["admin"]})
    assert_error_envelope(r, 401, "unauthorized")


async def test_token_is_stored_only_as_its_sha256(api: Api, admin: Actor) -> None:
    ctx = api.client._transport.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.reading() as session:
        row = await session.get(ApiToken, admin.token_id)
    assert row is not None
    assert row.secret_hash == hashlib.sha256(admin.token.encode()).hexdigest()
    assert admin.token not in (row.secret_hash, row.prefix, row.name)


async def test_list_shows_no_secrets(api: Api, admin: Actor) -> None:
    r = await api.client.get("/api/v1/tokens", headers=admin.headers)
    assert r.status_code == 200
    assert_matches_contract(r, "listTokens")
    assert admin.token not in r.text
    assert admin.token_id in {t["id"] for t in r.json()["items"]}


async def test_members_list_only_their_own_tokens(api: Api, member: Actor, other: Actor) -> None:
    r = await api.client.get("/api/v1/tokens", headers=member.headers)
    ids = {t["id"] for t in r.json()["items"]}
    assert member.token_id in ids and other.token_id not in ids


async def test_revoked_token_stops_working(api: Api, admin: Actor, member: Actor) -> None:
    r = await api.client.delete(f"/api/v1/tokens/{member.token_id}", headers=member.headers)
    assert r.status_code == 204
    again = await api.client.get("/api/v1/apps", headers=member.headers)
    error = assert_error_envelope(again, 401, "unauthorized")
    assert "revoked" in error["message"]
    listed = await api.client.get("/api/v1/tokens", headers=admin.headers)
    [summary] = [t for t in listed.json()["items"] if t["id"] == member.token_id]
    assert summary["revoked_at_unix_ms"] is not None


async def test_members_cannot_revoke_tokens_of_others(
    api: Api, member: Actor, other: Actor
) -> None:
    r = await api.client.delete(f"/api/v1/tokens/{other.token_id}", headers=member.headers)
    assert_error_envelope(r, 404, "not_found")
    assert (await api.client.get("/api/v1/apps", headers=other.headers)).status_code == 200


async def test_expired_token_is_refused(
    api: Api, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "short", "scopes": ["read"], "expires_in_seconds": 60},
        headers=admin.headers,
    )
    token = r.json()["token"]
    assert (
        r.json()["summary"]["expires_at_unix_ms"] - r.json()["summary"]["created_at_unix_ms"]
        == 60_000
    )
    import shipyard.tokens.service as tokens_service

    real_now = tokens_service.now_ms
    monkeypatch.setattr(tokens_service, "now_ms", lambda: real_now() + 61_000)
    error = assert_error_envelope(await api.client.get("/api/v1/apps", headers=bearer(token)), 401)
    assert "expired" in error["message"]


async def test_last_used_time_is_recorded(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens", json={"name": "ci", "scopes": ["read"]}, headers=admin.headers
    )
    token, token_id = r.json()["token"], r.json()["summary"]["id"]
    assert r.json()["summary"]["last_used_at_unix_ms"] is None
    await api.client.get("/api/v1/apps", headers=bearer(token))
    listed = await api.client.get("/api/v1/tokens", headers=admin.headers)
    [summary] = [t for t in listed.json()["items"] if t["id"] == token_id]
    assert summary["last_used_at_unix_ms"] is not None


async def test_a_token_cannot_mint_more_rights_than_it_has(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens", json={"name": "d", "scopes": ["deploy"]}, headers=admin.headers
    )
    deploy = bearer(r.json()["token"])
    # Creating tokens needs the admin scope; a deploy token is refused before anything else.
    refused = await api.client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["admin"]}, headers=deploy
    )
    assert_error_envelope(refused, 403, "forbidden")


async def test_scopes_are_validated_per_item(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["read", "root"]}, headers=admin.headers
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"] == [
        {"field": "scopes[1]", "message": "must be one of read, deploy, admin"}
    ]


async def test_service_token_has_its_own_prefix(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "svc", "scopes": ["deploy"], "kind": "service"},
        headers=admin.headers,
    )
    assert r.json()["token"].startswith("sy_svc_")
    assert r.json()["summary"]["kind"] == "service"


async def test_state_changing_token_use_is_audited(api: Api, admin: Actor) -> None:
    await api.create_app(admin, "audited")
    await api.client.get("/api/v1/apps", headers=admin.headers)
    ctx = api.client._transport.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.reading() as session:
        rows = (
            (await session.execute(select(AuditEvent).where(AuditEvent.token_id == admin.token_id)))
            .scalars()
            .all()
        )
    assert [(r.method, r.route, r.status_code) for r in rows] == [("POST", "/api/v1/apps", 201)]
    assert rows[0].user_id == admin.user_id and rows[0].request_id


async def test_app_bound_token_sees_only_its_app(api: Api, admin: Actor) -> None:
    mine = await api.create_app(admin, "bound")
    await api.create_app(admin, "unbound")
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "svc", "scopes": ["deploy"], "kind": "service", "app_id": mine["id"]},
        headers=admin.headers,
    )
    svc = bearer(r.json()["token"])
    listed = await api.client.get("/api/v1/apps", headers=svc)
    assert [a["name"] for a in listed.json()["items"]] == ["bound"]


async def test_many_concurrent_reads_with_a_stale_token_do_not_exhaust_the_pool(
    api: Api, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: recording last use took a second connection per request and deadlocked."""
    import asyncio

    import shipyard.tokens.service as tokens_service

    real_now = tokens_service.now_ms
    monkeypatch.setattr(tokens_service, "now_ms", lambda: real_now() + 31_000)
    replies = await asyncio.wait_for(
        asyncio.gather(*(api.client.get("/api/v1/apps", headers=admin.headers) for _ in range(24))),
        timeout=20,
    )
    assert {r.status_code for r in replies} == {200}
