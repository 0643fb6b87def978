"""Login sessions, password reset, bootstrap and resolving a request's credentials."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth import repository
from shipyard.auth.passwords import check_password_policy, hash_password, verify_password
from shipyard.auth.principal import SCOPES, Principal
from shipyard.auth.secrets import RESET_PREFIX, SESSION_PREFIX, hash_secret, new_secret
from shipyard.clock import now_ms
from shipyard.drivers.mail import Mailer
from shipyard.errors import FieldError, Invalid, Unauthorized
from shipyard.ids import new_id
from shipyard.models import LoginSession, PasswordReset, User
from shipyard.tokens import repository as tokens_repository
from shipyard.tokens import service as tokens_service
from shipyard.users import repository as users_repository
from shipyard.users.service import normalise_email

log = logging.getLogger("shipyard.auth")

ALL_SCOPES = frozenset(SCOPES)


@dataclass
class BootstrapState:
    """Open until the first user or token exists; once closed it stays closed in this process."""

    closed: bool = False

    async def is_open(self, session: AsyncSession) -> bool:
        if self.closed:
            return False
        if await users_repository.any_exists(session) or await tokens_repository.any_exists(
            session
        ):
            self.closed = True
        return not self.closed


def bootstrap_principal() -> Principal:
    return Principal(user_id=None, role="root", scopes=ALL_SCOPES, via="bootstrap")


async def authenticate_bearer(
    session: AsyncSession, raw: str, signing_key: bytes | None = None
) -> tuple[Principal, bool]:
    return await tokens_service.authenticate(session, raw, signing_key)


async def authenticate_session_cookie(session: AsyncSession, raw: str) -> Principal:
    found = await repository.find_session(session, hash_secret(raw))
    if found is None:
        raise Unauthorized("the session is not known; log in again", code="session_invalid")
    login, user = found
    if login.revoked_at_ms is not None or login.expires_at_ms <= now_ms():
        raise Unauthorized("the session has ended; log in again", code="session_expired")
    return Principal(
        user_id=user.id,
        role=user.role,
        scopes=ALL_SCOPES,
        via="session",
        session_id=login.id,
        email=user.email,
    )


async def check_credentials(session: AsyncSession, email: str, password: str) -> User:
    user = await users_repository.get_by_email(session, normalise_email(email))
    # verify_password runs argon2 even for an unknown email so timing tells nothing.
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("the email or password is wrong", code="invalid_credentials")
    return user


async def login(
    session: AsyncSession, *, email: str, password: str, ttl_seconds: int
) -> tuple[str, LoginSession, User]:
    """Check the password and open a session; the raw cookie value is returned once."""
    user = await check_credentials(session, email, password)
    now = now_ms()
    raw = new_secret(SESSION_PREFIX)
    login_session = LoginSession(
        id=new_id(),
        user_id=user.id,
        secret_hash=hash_secret(raw),
        created_at_ms=now,
        expires_at_ms=now + ttl_seconds * 1000,
    )
    user.last_login_at_ms = now
    session.add(login_session)
    await session.flush()
    return raw, login_session, user


async def end_session(session: AsyncSession, raw_cookie: str) -> Principal | None:
    """Revoke the session the cookie names; None when it was not a live session."""
    try:
        principal = await authenticate_session_cookie(session, raw_cookie)
    except Unauthorized:
        return None
    login_session = await repository.get_session(session, principal.session_id or "")
    if login_session is not None:
        login_session.revoked_at_ms = now_ms()
        await session.flush()
    return principal


async def request_password_reset(
    session: AsyncSession,
    *,
    email: str,
    ttl_seconds: int,
    mailer: Mailer,
    public_base_url: str | None = None,
) -> int:
    """Issue a reset token if the account exists; the answer is the same either way.

    The token goes to the user's mailbox (or the server log without SMTP), never to the caller:
    handing it to whoever asks would let anyone take over any account.
    """
    expires_at = now_ms() + ttl_seconds * 1000
    try:
        normalised = normalise_email(email)
    except Invalid:
        return expires_at
    user = await users_repository.get_by_email(session, normalised)
    if user is None:
        return expires_at
    raw = new_secret(RESET_PREFIX)
    session.add(
        PasswordReset(
            id=new_id(),
            user_id=user.id,
            secret_hash=hash_secret(raw),
            created_at_ms=now_ms(),
            expires_at_ms=expires_at,
        )
    )
    await session.flush()
    where = f" at {public_base_url.rstrip('/')}" if public_base_url else ""
    body = (
        f"Someone asked to reset the Shipyard password of {user.email}{where}.\n\n"
        f"Reset token: {raw}\n\nIt works once, within {ttl_seconds // 60} minutes:\n"
        f"  POST /api/v1/auth/password-reset/confirm "
        f'{{"reset_token": "<token>", "new_password": "..."}}\n\n'
        "If you did not ask for this, ignore this message."
    )
    _send_later(mailer, user.email, "Shipyard password reset", body)
    return expires_at


_outbox: set[asyncio.Task[None]] = set()


def _send_later(mailer: Mailer, to: str, subject: str, body: str) -> None:
    """Mail off the request path, so the answer takes as long whether or not the user exists."""

    async def send() -> None:
        try:
            await mailer.send(to, subject, body)
        except Exception:  # a mail outage must not break the API; the operator sees it in the log
            log.exception("could not send mail to %s", to)

    task = asyncio.get_running_loop().create_task(send())
    _outbox.add(task)
    task.add_done_callback(_outbox.discard)


async def drain_outbox() -> None:
    """Wait for mail still being sent (on shutdown, and in tests)."""
    while _outbox:
        await asyncio.gather(*list(_outbox), return_exceptions=True)


async def confirm_password_reset(
    session: AsyncSession, *, reset_token: str, new_password: str
) -> None:
    """Set a new password with a valid reset token, use the token up, end the user's sessions."""
    check_password_policy(new_password, "new_password")
    reset = await repository.find_reset(session, hash_secret(reset_token))
    now = now_ms()
    if reset is None or reset.used_at_ms is not None or reset.expires_at_ms <= now:
        raise Invalid(
            "the reset token is invalid, expired or already used; request a new one",
            [FieldError("reset_token", "invalid, expired or already used")],
            code="invalid_reset_token",
        )
    user = await users_repository.get(session, reset.user_id)
    assert user is not None  # the foreign key cascades deletes
    reset.used_at_ms = now
    user.password_hash = hash_password(new_password)
    user.updated_at_ms = now
    await repository.revoke_sessions_of(session, user.id, now)
    await session.flush()


async def whoami(session: AsyncSession, principal: Principal) -> tuple[User, int]:
    """The user behind a credential and when that credential ends (0: it does not expire)."""
    user = await users_repository.get(session, principal.user_id) if principal.user_id else None
    if user is None:
        raise Unauthorized("this credential belongs to no user; log in with a user account")
    expires = 0
    if principal.session_id:
        login_session = await repository.get_session(session, principal.session_id)
        expires = login_session.expires_at_ms if login_session else 0
    elif principal.token_id:
        token = await tokens_repository.get(session, principal.token_id)
        expires = (token.expires_at_ms or 0) if token else 0
    return user, expires


async def login_jwt(
    session: AsyncSession, *, email: str, password: str, signing_key: bytes, ttl_seconds: int
) -> tuple[str, User]:
    """Check the password and issue a JWT (for APIs whose clients expect one)."""
    user = await check_credentials(session, email, password)
    user.last_login_at_ms = now_ms()
    raw, _ = await tokens_service.issue_jwt(session, user, signing_key, ttl_seconds)
    return raw, user
