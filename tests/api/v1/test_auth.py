"""Login, logout, me, password reset through /api/v1/auth."""

from __future__ import annotations

import logging

import pytest

from shipyard.auth.service import drain_outbox
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Actor, Api, session_cookie
from tests.contract import assert_error_envelope, assert_matches_contract


async def test_login_sets_httponly_lax_session_cookie(api: Api, admin: Actor) -> None:
    r = await api.login(ADMIN_EMAIL)
    assert r.status_code == 200
    assert_matches_contract(r, "authLogin")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("rustploy_session=sy_ses_")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert r.json()["email"] == ADMIN_EMAIL and r.json()["role"] == "admin"


async def test_session_cookie_is_secure_behind_https(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "https://testserver/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    assert "Secure" in r.headers["set-cookie"]


async def test_wrong_password_is_401(api: Api, admin: Actor) -> None:
    r = await api.login(ADMIN_EMAIL, "wrong password!")
    assert_error_envelope(r, 401, "invalid_credentials")


async def test_unknown_email_answers_like_wrong_password(api: Api, admin: Actor) -> None:
    r = await api.login("nobody@example.com")
    assert_error_envelope(r, 401, "invalid_credentials")


async def test_me_returns_the_session_user(api: Api, admin: Actor) -> None:
    login = await api.login(ADMIN_EMAIL)
    r = await api.client.get("/api/v1/auth/me", headers=session_cookie(login))
    assert r.status_code == 200
    assert_matches_contract(r, "authMe")
    assert r.json()["user_id"] == admin.user_id
    assert r.json()["session_expires_at_unix_ms"] == login.json()["session_expires_at_unix_ms"]


async def test_me_accepts_a_bearer_token(api: Api, admin: Actor) -> None:
    r = await api.client.get("/api/v1/auth/me", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["email"] == ADMIN_EMAIL


async def test_logout_ends_the_session(api: Api, admin: Actor) -> None:
    cookies = session_cookie(await api.login(ADMIN_EMAIL))
    r = await api.client.post("/api/v1/auth/logout", headers=cookies)
    assert r.status_code == 204
    assert (
        'rustploy_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    )
    after = await api.client.get("/api/v1/auth/me", headers=cookies)
    assert_error_envelope(after, 401, "session_expired")


async def test_logout_without_session_is_harmless(api: Api, admin: Actor) -> None:
    assert (await api.client.post("/api/v1/auth/logout")).status_code == 204


async def test_reset_request_answers_the_same_for_unknown_accounts(api: Api, admin: Actor) -> None:
    known = await api.client.post(
        "/api/v1/auth/password-reset/request", json={"email": ADMIN_EMAIL}
    )
    unknown = await api.client.post(
        "/api/v1/auth/password-reset/request", json={"email": "ghost@example.com"}
    )
    assert known.status_code == unknown.status_code == 202
    assert_matches_contract(known, "authPasswordResetRequest")
    assert known.json().keys() == unknown.json().keys()
    assert known.json()["reset_token"] == unknown.json()["reset_token"] == ""


async def _reset_token_from_log(api: Api, caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.WARNING, logger="shipyard.mail"):
        r = await api.client.post(
            "/api/v1/auth/password-reset/request", json={"email": ADMIN_EMAIL}
        )
        assert r.status_code == 202
        await drain_outbox()
    [line] = [rec.getMessage() for rec in caplog.records if "Reset token:" in rec.getMessage()]
    return line.split("Reset token: ")[1].split()[0]


async def test_reset_token_goes_to_the_log_without_smtp_and_sets_password(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    token = await _reset_token_from_log(api, caplog)
    r = await api.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"reset_token": token, "new_password": "a brand new password"},
    )
    assert r.status_code == 200
    assert_matches_contract(r, "authPasswordResetConfirm")
    assert (await api.login(ADMIN_EMAIL, "a brand new password")).status_code == 200
    assert (await api.login(ADMIN_EMAIL)).status_code == 401


async def test_reset_token_works_once(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    token = await _reset_token_from_log(api, caplog)
    body = {"reset_token": token, "new_password": "a brand new password"}
    assert (
        await api.client.post("/api/v1/auth/password-reset/confirm", json=body)
    ).status_code == 200
    again = await api.client.post("/api/v1/auth/password-reset/confirm", json=body)
    assert_error_envelope(again, 400, "invalid_reset_token")


async def test_reset_ends_existing_sessions(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    cookies = session_cookie(await api.login(ADMIN_EMAIL))
    token = await _reset_token_from_log(api, caplog)
    await api.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"reset_token": token, "new_password": "a brand new password"},
    )
    assert (await api.client.get("/api/v1/auth/me", headers=cookies)).status_code == 401


async def test_reset_rejects_a_short_password(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    token = await _reset_token_from_log(api, caplog)
    r = await api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"reset_token": token, "new_password": "short"}
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"][0]["field"] == "new_password"


async def test_expired_reset_token_is_refused(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await _reset_token_from_log(api, caplog)
    import shipyard.auth.service as auth_service

    real_now = auth_service.now_ms
    monkeypatch.setattr(auth_service, "now_ms", lambda: real_now() + 31 * 60 * 1000)
    r = await api.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"reset_token": token, "new_password": "a brand new password"},
    )
    assert_error_envelope(r, 400, "invalid_reset_token")


async def test_reset_token_is_stored_hashed(
    api: Api, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import select

    from shipyard.models import PasswordReset

    token = await _reset_token_from_log(api, caplog)
    ctx = api.client._transport.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.reading() as session:
        stored = (await session.execute(select(PasswordReset.secret_hash))).scalars().all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64
