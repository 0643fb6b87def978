"""Sign in with GitHub: a signed state against CSRF, then create or link the user, then a JWT."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.clock import now_ms
from shipyard.drivers.github import GithubOAuth, GithubUser
from shipyard.errors import Invalid, Unavailable
from shipyard.ids import new_id
from shipyard.models import ApiToken, User
from shipyard.tokens import service as tokens_service
from shipyard.users.service import normalise_email

STATE_TTL_SECONDS = 600


def _state(signing_key: bytes) -> str:
    claims = {
        "purpose": "github-oauth",
        "nonce": secrets.token_urlsafe(16),
        "exp": int(time.time()) + STATE_TTL_SECONDS,
    }
    import jwt  # imported on use: PyJWT loads the cryptography bindings (~6 MB resident)

    return jwt.encode(claims, signing_key, algorithm="HS256")


def check_state(signing_key: bytes, state: str) -> None:
    import jwt  # imported on use: see _state

    try:
        claims = jwt.decode(state, signing_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        claims = {}
    if claims.get("purpose") != "github-oauth":
        raise Invalid(
            "the OAuth state is invalid or expired; start again at /v1/auth/github",
            code="invalid_state",
        )


def authorize_url(
    authorize_base: str, client_id: str | None, redirect_uri: str, signing_key: bytes
) -> str:
    if not client_id:
        raise Unavailable(
            "GitHub sign-in is not configured (set SHIPYARD_GITHUB_CLIENT_ID and _SECRET)"
        )
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "read:user user:email",
            "state": _state(signing_key),
        }
    )
    return f"{authorize_base}?{query}"


async def _link_user(session: AsyncSession, gh: GithubUser) -> User:
    user = await session.scalar(select(User).where(User.github_id == gh.id))
    if user is None and gh.email:
        user = await session.scalar(select(User).where(User.email == normalise_email(gh.email)))
        if user is not None:
            user.github_id = gh.id
    if user is None:
        now = now_ms()
        taken = await session.scalar(select(User.id).where(User.username == gh.login))
        user = User(
            id=new_id(),
            email=normalise_email(gh.email) if gh.email else f"{gh.login}@users.noreply.github.com",
            username=None if taken else gh.login,
            password_hash=None,
            role="member",
            github_id=gh.id,
            created_at_ms=now,
            updated_at_ms=now,
        )
        session.add(user)
    user.last_login_at_ms = now_ms()
    await session.flush()
    return user


async def complete(
    session: AsyncSession,
    oauth: GithubOAuth,
    *,
    code: str,
    state: str,
    redirect_uri: str,
    signing_key: bytes,
    ttl_seconds: int,
) -> tuple[str, ApiToken, User]:
    """The callback: check state, exchange the code, find or create the user, issue a JWT."""
    check_state(signing_key, state)
    access_token = await oauth.exchange_code(code, redirect_uri)
    user = await _link_user(session, await oauth.user(access_token))
    raw, token = await tokens_service.issue_jwt(
        session, user, signing_key, ttl_seconds, name="github"
    )
    return raw, token, user
