"""Dependencies every endpoint shares: the context, the request's transaction, the caller."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth import service as auth_service
from shipyard.auth.principal import Principal, Scope
from shipyard.context import AppContext
from shipyard.errors import Forbidden, Unauthorized
from shipyard.tokens import service as tokens_service

SESSION_COOKIE = "rustploy_session"  # the name the Rustploy contract gives its cookie
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the endpoint returns, rolled back on error."""
    write = request.method not in READ_METHODS
    async with get_ctx(request).database.session(write=write) as session:
        try:
            yield session
            if write:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a failed commit is the response.
DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(client_ip(request)).is_loopback
    except ValueError:
        return False


async def rate_limit(request: Request, group: str, client: str) -> None:
    limiter = get_ctx(request).limiter
    if limiter is not None:
        request.state.ratelimit = await limiter.hit(group, client)


async def authenticate(request: Request, session: AsyncSession) -> Principal:
    """Bearer token, else session cookie, else (before the first user or token) loopback."""
    ctx = get_ctx(request)
    header = request.headers.get("authorization")
    try:
        if header:
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != "bearer" or not raw.strip():
                raise Unauthorized("use the header 'Authorization: Bearer <token>'")
            principal, stale = await auth_service.authenticate_bearer(
                session, raw.strip(), ctx.signing_key
            )
            if stale and request.method in READ_METHODS:
                # Recorded after the response (RequestMiddleware): a second connection taken
                # here, while this request holds its own, could exhaust the pool under load.
                request.state.touch_token = principal.token_id
            elif stale:
                await tokens_service.record_use(session, principal.token_id or "")
        elif cookie := request.cookies.get(SESSION_COOKIE):
            principal = await auth_service.authenticate_session_cookie(session, cookie)
        elif await ctx.bootstrap.is_open(session):
            if not is_loopback(request):
                raise Unauthorized(
                    "Shipyard has no users or tokens yet; create the first admin from this "
                    "machine (shipyard admin create) or call POST /api/v1/tokens over loopback"
                )
            principal = auth_service.bootstrap_principal()
        else:
            raise Unauthorized(
                "authentication required: send 'Authorization: Bearer <token>' or log in "
                "with POST /api/v1/auth/login"
            )
    except Unauthorized:
        # Failed credentials count against the caller's address, so guessing tokens is slow.
        await rate_limit(request, "auth", client_ip(request))
        raise
    request.state.principal = principal
    return principal


def require(scope: Scope) -> Callable[[Request, AsyncSession], Awaitable[Principal]]:
    """Dependency: an authenticated caller whose credential carries ``scope`` (or a higher one)."""

    async def dependency(request: Request, session: DbSession) -> Principal:
        principal = await authenticate(request, session)
        group = "read" if request.method in READ_METHODS else "write"
        await rate_limit(
            request, group, principal.token_id or principal.user_id or client_ip(request)
        )
        if not principal.has_scope(scope):
            raise Forbidden(
                f"this needs a credential with the '{scope}' scope; yours has "
                f"{', '.join(sorted(principal.scopes)) or 'none'}. Create a token with that scope."
            )
        return principal

    return dependency


async def unbound_admin(principal: Annotated[Principal, Depends(require("admin"))]) -> Principal:
    """Installation-wide actions (users, tokens) are not for tokens bound to one app."""
    if principal.app_id is not None:
        raise Forbidden("a token bound to one app can only act on that app")
    return principal


Reader = Annotated[Principal, Depends(require("read"))]
Deployer = Annotated[Principal, Depends(require("deploy"))]
Admin = Annotated[Principal, Depends(require("admin"))]
UnboundAdmin = Annotated[Principal, Depends(unbound_admin)]


async def anonymous_limit(request: Request) -> None:
    """Rate limit for endpoints that need no credential (login, password reset)."""
    await rate_limit(request, "auth", client_ip(request))
