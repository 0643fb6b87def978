"""RustCI auth: JWTs (signed, expiring, revocable by id) and GitHub OAuth against a local stand-in
provider served over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shipyard.app import create_app
from shipyard.config import Settings
from tests.conftest import Api
from tests.dialects.rustci.conftest import CI, jwt_for
from tests.dialects.rustci.test_workspaces import assert_rustci_error


async def test_password_exchange_gives_a_working_jwt(ci: CI) -> None:
    assert ci.token.startswith("eyJ") and ci.token.count(".") == 2
    assert (await ci.request("GET", "/api/users/me")).status_code == 200


async def test_a_jwt_works_on_the_canonical_api_too(ci: CI) -> None:
    assert (await ci.api.client.get("/api/v1/apps", headers=ci.headers)).status_code == 200


async def test_a_revoked_jwt_is_refused(ci: CI) -> None:
    import jwt as pyjwt

    jti = pyjwt.decode(ci.token, options={"verify_signature": False})["jti"]
    assert (
        await ci.api.client.delete(f"/api/v1/tokens/{jti}", headers=ci.headers)
    ).status_code == 204
    error = assert_rustci_error(
        await ci.request("GET", "/api/users/me"), 401, "AuthenticationError"
    )
    assert "revoked" in error["message"]


async def test_a_tampered_jwt_is_refused(ci: CI) -> None:
    head, body, sig = ci.token.split(".")
    forged = CI(ci.api, f"{head}.{body}.{sig[:-4]}AAAA")
    assert_rustci_error(await forged.request("GET", "/api/users/me"), 401, "AuthenticationError")


async def test_an_expired_jwt_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await api.user("late@example.com")
    token = await jwt_for(api, "late@example.com")
    import shipyard.tokens.service as tokens_service

    real = tokens_service.now_ms
    monkeypatch.setattr(tokens_service, "now_ms", lambda: real() + 25 * 3600 * 1000)
    r = await api.client.get("/v1/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert "expired" in assert_rustci_error(r, 401, "AuthenticationError")["message"]


async def test_wrong_password_gets_no_jwt(api: Api) -> None:
    await api.user("pw@example.com")
    r = await api.client.post(
        "/v1/auth/token", json={"email": "pw@example.com", "password": "nope nope"}
    )
    assert_rustci_error(r, 401, "AuthenticationError")


# --- GitHub OAuth against a stand-in provider --------------------------------------------


def _provider() -> Starlette:
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("code") != "good-code" or form.get("client_secret") != "csecret":
            return JSONResponse({"error": "bad_verification_code"})
        return JSONResponse({"access_token": "gho_standin", "token_type": "bearer"})

    async def user(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer gho_standin":
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse({"id": 4242, "login": "octocat", "email": None})

    async def emails(request: Request) -> JSONResponse:
        return JSONResponse([{"email": "octo@example.com", "primary": True, "verified": True}])

    return Starlette(
        routes=[
            Route("/login/oauth/access_token", token, methods=["POST"]),
            Route("/user", user),
            Route("/user/emails", emails),
        ]
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_provider(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
async def oauth_client(settings: Settings, provider: str) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={
            "github_client_id": "cid",
            "github_client_secret": "csecret",
            "github_authorize_url": f"{provider}/login/oauth/authorize",
            "github_token_url": f"{provider}/login/oauth/access_token",
            "github_api_url": provider,
        }
    )
    application = create_app(configured)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://ci.local") as client:
            yield client


async def _state(client: httpx.AsyncClient, provider: str) -> str:
    r = await client.get("/v1/auth/github")
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(f"{provider}/login/oauth/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == ["cid"]
    assert query["redirect_uri"] == ["http://ci.local/v1/auth/github/callback"]
    return query["state"][0]


async def test_github_sign_in_creates_the_user_and_returns_a_jwt(
    oauth_client: httpx.AsyncClient, provider: str
) -> None:
    state = await _state(oauth_client, provider)
    r = await oauth_client.get(
        "/v1/auth/github/callback", params={"code": "good-code", "state": state}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["user"]["github_id"] == "4242"
    me = await oauth_client.get(
        "/v1/api/users/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.json().get("email") == "octo@example.com", me.text
    assert me.json()["username"] == "octocat"


async def test_signing_in_again_links_the_same_user(
    oauth_client: httpx.AsyncClient, provider: str
) -> None:
    ids = []
    for _ in range(2):
        state = await _state(oauth_client, provider)
        r = await oauth_client.get(
            "/v1/auth/github/callback", params={"code": "good-code", "state": state}
        )
        ids.append(r.json()["user"]["id"])
    assert ids[0] == ids[1]


async def test_a_forged_state_is_refused(oauth_client: httpx.AsyncClient) -> None:
    r = await oauth_client.get(
        "/v1/auth/github/callback", params={"code": "good-code", "state": "forged"}
    )
    assert_rustci_error(r, 400, "ValidationError")


async def test_a_bad_code_is_refused(oauth_client: httpx.AsyncClient, provider: str) -> None:
    state = await _state(oauth_client, provider)
    r = await oauth_client.get(
        "/v1/auth/github/callback", params={"code": "stolen", "state": state}
    )
    error = assert_rustci_error(r, 401, "AuthenticationError")
    assert "bad_verification_code" in error["message"]


async def test_sign_in_without_configuration_says_so(ci: CI) -> None:
    r = await ci.api.client.get("/v1/auth/github")
    assert (
        "SHIPYARD_GITHUB_CLIENT_ID" in assert_rustci_error(r, 503, "ServiceUnavailable")["message"]
    )
