"""Rate limits per client and route group, with X-RateLimit-* headers and 429 + Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shipyard.app import create_app
from shipyard.config import Settings
from tests.conftest import Api, bearer
from tests.contract import assert_error_envelope


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Api]:
    strict = settings.model_copy(
        update={
            "rate_limit_read": "3/minute",
            "rate_limit_write": "2/minute",
            "rate_limit_auth": "2/minute",
        }
    )
    application = create_app(strict)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(client)


async def test_headers_count_down(limited: Api) -> None:
    root = await limited.root()
    first = await limited.client.get("/api/v1/apps", headers=root.headers)
    second = await limited.client.get("/api/v1/apps", headers=root.headers)
    assert first.headers["x-ratelimit-limit"] == "3"
    assert (
        int(first.headers["x-ratelimit-remaining"])
        == int(second.headers["x-ratelimit-remaining"]) + 1
    )
    assert int(first.headers["x-ratelimit-reset"]) > 0


async def test_over_the_limit_is_429_with_retry_after(limited: Api) -> None:
    root = await limited.root()
    for _ in range(3):
        assert (await limited.client.get("/api/v1/apps", headers=root.headers)).status_code == 200
    r = await limited.client.get("/api/v1/apps", headers=root.headers)
    error = assert_error_envelope(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert "read" in error["message"]


async def test_limits_are_per_client(limited: Api) -> None:
    root = await limited.root()
    other = await limited.client.post(
        "/api/v1/tokens", json={"name": "b", "scopes": ["read"]}, headers=root.headers
    )
    for _ in range(4):
        await limited.client.get("/api/v1/apps", headers=root.headers)
    r = await limited.client.get("/api/v1/apps", headers=bearer(other.json()["token"]))
    assert r.status_code == 200


async def test_limits_are_per_route_group(limited: Api) -> None:
    root = await limited.root()
    for _ in range(4):
        await limited.client.get("/api/v1/apps", headers=root.headers)
    r = await limited.client.post("/api/v1/apps", json={"name": "web"}, headers=root.headers)
    assert r.status_code == 201


async def test_password_guessing_is_limited_by_address(limited: Api) -> None:
    body = {"email": "a@example.com", "password": "guess guess"}
    codes = [
        (await limited.client.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)
    ]
    assert codes == [401, 401, 429]


async def test_token_guessing_is_limited_by_address(limited: Api) -> None:
    await limited.root()
    codes = [
        (await limited.client.get("/api/v1/apps", headers=bearer(f"sy_pat_guess{i}"))).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]


@pytest.fixture
async def limited_ci(settings: Settings) -> AsyncIterator[Api]:
    strict = settings.model_copy(update={"rate_limit_rustci": "3/minute;1000/hour"})
    application = create_app(strict)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(client)


async def test_rustci_limit_per_user_answers_429_in_its_envelope(limited_ci: Api) -> None:
    root = await limited_ci.root()
    codes = []
    for _ in range(4):
        r = await limited_ci.client.get("/v1/api/workspaces", headers=root.headers)
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429]
    assert r.json()["error"]["type"] == "RateLimitError" and int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ratelimit-limit"] == "3"
