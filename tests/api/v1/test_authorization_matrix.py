"""Every endpoint times every kind of credential: who gets in, who gets 401/403/404, and that a
refused request changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Api, bearer

READ, DEPLOY, ADMIN = "read", "deploy", "admin"
CREDENTIALS = ["none", "expired", "revoked", "read", "deploy", "admin", "other_user"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {app}, {domain}, {token} are filled in from the fixture's objects
    scope: str
    body: dict[str, Any] | None = None
    object_level: bool = True  # does another user's token get 404?
    admin_role: bool = False  # needs a user with the admin role, not only the scope
    ok: int = 200


ENDPOINTS = [
    Endpoint("GET", "/api/v1/apps", READ, object_level=False),
    Endpoint("POST", "/api/v1/apps", ADMIN, {"name": "fresh"}, object_level=False, ok=201),
    Endpoint("GET", "/api/v1/apps/{app}", READ),
    Endpoint("PATCH", "/api/v1/apps/{app}", ADMIN, {"runtime": {"port": 81}}),
    Endpoint("DELETE", "/api/v1/apps/{app}", ADMIN, ok=204),
    Endpoint("GET", "/api/v1/apps/{app}/config", READ),
    Endpoint("GET", "/api/v1/apps/{app}/env", READ),
    Endpoint("PUT", "/api/v1/apps/{app}/env", ADMIN, {"key": "NEW", "value": "v"}),
    Endpoint("DELETE", "/api/v1/apps/{app}/env/SECRET", ADMIN, ok=204),
    Endpoint("GET", "/api/v1/apps/{app}/domains", READ),
    Endpoint("POST", "/api/v1/apps/{app}/domains", ADMIN, {"domain": "new.example.com"}, ok=201),
    Endpoint("DELETE", "/api/v1/apps/{app}/domains/{domain}", ADMIN, ok=204),
    Endpoint("GET", "/api/v1/tokens", READ, object_level=False),
    Endpoint(
        "POST",
        "/api/v1/tokens",
        ADMIN,
        {"name": "t", "scopes": ["read"]},
        object_level=False,
        ok=201,
    ),
    Endpoint("DELETE", "/api/v1/tokens/{token}", ADMIN, ok=204),
    Endpoint("GET", "/api/v1/users", ADMIN, object_level=False, admin_role=True),
    Endpoint(
        "POST",
        "/api/v1/users",
        ADMIN,
        {"email": "new@example.com", "password": "long enough pw"},
        object_level=False,
        admin_role=True,
        ok=201,
    ),
    Endpoint("GET", "/metrics", READ, object_level=False),
    Endpoint("GET", "/api/v1/auth/me", READ, object_level=False),
]

RANK = {READ: 0, DEPLOY: 1, ADMIN: 2}


def expected_status(endpoint: Endpoint, credential: str) -> int:
    if credential in ("none", "expired", "revoked"):
        return 401
    if credential == "other_user":
        return 404 if endpoint.object_level else (403 if endpoint.admin_role else endpoint.ok)
    if RANK[credential] < RANK[endpoint.scope]:
        return 403
    if endpoint.admin_role:
        return 403  # the owner is a member, not an admin
    return endpoint.ok


class World:
    """An owner (member role) with one app, an env var, a domain, and tokens of every kind."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    async def build(self, monkeypatch: pytest.MonkeyPatch) -> None:
        api = self.api
        owner = await api.user("owner@example.com", scopes=[ADMIN])
        other = await api.user("other@example.com", scopes=[ADMIN])
        self.tokens = {"admin": owner.token, "other_user": other.token}
        for scope in (READ, DEPLOY):
            self.tokens[scope], _ = await api.token_for("owner@example.com", [scope])
        revoked, revoked_id = await api.token_for("owner@example.com", [ADMIN])
        await api.client.delete(f"/api/v1/tokens/{revoked_id}", headers=owner.headers)
        self.tokens["revoked"] = revoked
        self.tokens["expired"], _ = await api.token_for(
            "owner@example.com", [ADMIN], expires_in_seconds=1
        )
        app = await api.create_app(owner, "owned")
        self.ids["app"] = app["id"]
        await api.client.put(
            f"/api/v1/apps/{app['id']}/env",
            json={"key": "SECRET", "value": "v"},
            headers=owner.headers,
        )
        domain = await api.client.post(
            f"/api/v1/apps/{app['id']}/domains",
            json={"domain": "owned.example.com"},
            headers=owner.headers,
        )
        self.ids["domain"] = domain.json()["id"]
        _, self.ids["token"] = await api.token_for("owner@example.com", [READ])
        import shipyard.tokens.service as tokens_service

        real_now = tokens_service.now_ms
        monkeypatch.setattr(tokens_service, "now_ms", lambda: real_now() + 2_000)

    def headers(self, credential: str) -> dict[str, str]:
        return {} if credential == "none" else bearer(self.tokens[credential])

    async def snapshot(self) -> Any:
        """Everything the owner can see, read with the owner's admin token."""
        h, app = bearer(self.tokens["admin"]), self.ids["app"]
        get = self.api.client.get
        tokens = (await get("/api/v1/tokens", headers=h)).json()["items"]
        return (
            (await get("/api/v1/apps", headers=h)).json(),
            (await get(f"/api/v1/apps/{app}/env?reveal=true", headers=h)).json(),
            (await get(f"/api/v1/apps/{app}/domains", headers=h)).json(),
            sorted((t["id"], t["revoked_at_unix_ms"]) for t in tokens),
        )


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_authorization(
    api: Api, monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, credential: str
) -> None:
    world = World(api)
    await world.build(monkeypatch)
    before = await world.snapshot()
    path = endpoint.path.format(**world.ids)
    r = await api.client.request(
        endpoint.method, path, json=endpoint.body, headers=world.headers(credential)
    )
    assert r.status_code == expected_status(endpoint, credential), r.text
    if r.status_code >= 400:
        assert r.json()["error"]["code"]
        if endpoint.method != "GET":
            assert await world.snapshot() == before
