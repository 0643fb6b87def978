"""Bad input gets a clear 4xx naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope


async def _apps(api: Api, actor: Actor) -> Any:
    return (await api.client.get("/api/v1/apps", headers=actor.headers)).json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 123}, "name"),
        ({"name": ["web"]}, "name"),
        ({}, "name"),
        ({"name": "web", "colour": "blue"}, "colour"),
        ({"name": "web", "runtime": {"port": "eighty"}}, "runtime.port"),
        ({"name": "web", "runtime": {"port": 70000}}, "runtime.port"),
        ({"name": "web", "build_mode": "magic"}, "build_mode"),
        ({"name": "web", "repository": {"clone_url": 5}}, "repository.clone_url"),
        ({"name": "x" * 64}, "name"),
    ],
)
async def test_create_app_rejects_bad_fields(
    api: Api, admin: Actor, body: dict[str, Any], field: str
) -> None:
    before = await _apps(api, admin)
    r = await api.client.post("/api/v1/apps", json=body, headers=admin.headers)
    error = assert_error_envelope(r, 400, "validation_error")
    assert field in [d["field"] for d in error["details"]]
    assert field in error["message"]
    assert await _apps(api, admin) == before


async def test_malformed_json_is_400(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/apps",
        content=b'{"name": "web",',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    error = assert_error_envelope(r, 400, "invalid_json")
    assert "JSON" in error["message"]
    assert (await _apps(api, admin))["items"] == []


async def test_a_json_array_instead_of_an_object_is_400(api: Api, admin: Actor) -> None:
    r = await api.client.post("/api/v1/apps", json=["web"], headers=admin.headers)
    assert_error_envelope(r, 400, "validation_error")


async def test_oversized_body_is_413(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/apps", json={"name": "web", "pad": "x" * (1024 * 1024)}, headers=admin.headers
    )
    error = assert_error_envelope(r, 413, "payload_too_large")
    assert "SHIPYARD_MAX_BODY_BYTES" in error["message"]
    assert (await _apps(api, admin))["items"] == []


async def test_oversized_chunked_body_is_413(api: Api, admin: Actor) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 65536

    r = await api.client.post(
        "/api/v1/apps",
        content=chunks(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert_error_envelope(r, 413, "payload_too_large")


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "", "Ä", "A" * 256])
async def test_bad_env_keys_are_rejected(api: Api, admin: Actor, key: str) -> None:
    app = await api.create_app(admin, "web")
    r = await api.client.put(
        f"/api/v1/apps/{app['id']}/env", json={"key": key, "value": "v"}, headers=admin.headers
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"][0]["field"] == "key"
    listed = await api.client.get(f"/api/v1/apps/{app['id']}/env", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_wrong_type_for_token_expiry(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "t", "scopes": ["read"], "expires_in_seconds": "soon"},
        headers=admin.headers,
    )
    error = assert_error_envelope(r, 400)
    assert error["details"][0]["field"] == "expires_in_seconds"


async def test_negative_token_expiry(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/tokens",
        json={"name": "t", "scopes": ["read"], "expires_in_seconds": -5},
        headers=admin.headers,
    )
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "expires_in_seconds"


async def test_unknown_endpoint_is_404_in_the_envelope(api: Api, admin: Actor) -> None:
    r = await api.client.get("/api/v1/nothing-here", headers=admin.headers)
    assert_error_envelope(r, 404, "not_found")


async def test_wrong_method_is_405_in_the_envelope(api: Api, admin: Actor) -> None:
    r = await api.client.put("/api/v1/health")
    assert_error_envelope(r, 405, "method_not_allowed")


async def test_malformed_authorization_header_is_401(api: Api, admin: Actor) -> None:
    r = await api.client.get("/api/v1/apps", headers={"Authorization": "Token abc"})
    error = assert_error_envelope(r, 401)
    assert "Bearer" in error["message"]


async def test_bad_login_email_is_400(api: Api, admin: Actor) -> None:
    r = await api.client.post("/api/v1/auth/login", json={"email": "not-an-email", "password": "x"})
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "email"


async def test_a_body_without_json_content_type_says_what_to_send(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/apps", content=b"name=web", headers={**admin.headers, "Content-Type": "text/plain"}
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert "Content-Type: application/json" in error["details"][0]["message"]
