"""The short-lived cache of verified tokens never lets a refused token through."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from shipyard.tokens import credential_cache
from tests.conftest import Actor, Api, bearer


async def _bound_token(api: Api, admin: Actor, app_id: str) -> str:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "bound", "scopes": ["read"], "app_id": app_id},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def test_a_token_bound_to_a_deleted_app_is_refused_at_once(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "doomed")
    token = await _bound_token(api, admin, app["id"])
    assert (await api.client.get("/api/v1/apps", headers=bearer(token))).status_code == 200
    assert (
        await api.client.delete(f"/api/v1/apps/{app['id']}", headers=admin.headers)
    ).status_code == 204
    # The database deleted the token with its app (ON DELETE CASCADE): no cached copy remains.
    r = await api.client.get("/api/v1/apps", headers=bearer(token))
    assert r.status_code == 401


async def test_a_cached_token_still_expires_on_time(
    api: Api, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "short", "scopes": ["read"], "expires_in_seconds": 60},
        headers=admin.headers,
    )
    token = r.json()["token"]
    assert (await api.client.get("/api/v1/apps", headers=bearer(token))).status_code == 200
    import shipyard.tokens.service as tokens_service

    real_now = tokens_service.now_ms
    monkeypatch.setattr(tokens_service, "now_ms", lambda: real_now() + 61_000)
    r = await api.client.get("/api/v1/apps", headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


async def test_a_change_made_outside_the_server_is_seen_within_the_cache_time(
    api: Api, admin: Actor, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credential_cache.cache, "ttl_seconds", 0.3)
    assert (await api.client.get("/api/v1/apps", headers=admin.headers)).status_code == 200
    # A plain SQL statement on its own connection: no ORM session of this process sees it, as
    # if an operator had revoked the token by hand.
    async with app.state.ctx.database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE api_tokens SET revoked_at_ms = 1 WHERE id = :id"),
            {"id": admin.token_id},
        )
    await asyncio.sleep(0.4)
    r = await api.client.get("/api/v1/apps", headers=admin.headers)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_entries_from_before_an_invalidation_are_misses() -> None:
    cache = credential_cache.CredentialCache(ttl_seconds=60)
    credential = credential_cache.TokenCredential(
        "t1", "u1", "read", None, None, None, None, "member", "u@example.com"
    )
    cache.put("hash", credential)
    assert cache.get("hash") == credential
    cache.invalidate()
    assert cache.get("hash") is None


def test_a_zero_cache_time_caches_nothing() -> None:
    cache = credential_cache.CredentialCache(ttl_seconds=0)
    credential = credential_cache.TokenCredential(
        "t1", "u1", "read", None, None, None, None, "member", None
    )
    cache.put("hash", credential)
    assert cache.get("hash") is None
