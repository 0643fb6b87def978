"""Login sessions and password reset."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from shipyard.api.deps import SESSION_COOKIE, Ctx, DbSession, anonymous_limit, authenticate
from shipyard.api.v1 import V1
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.auth import service as auth_service

router = APIRouter(prefix=f"{V1}/auth", tags=["auth"], responses=ERRORS)


@router.post(
    "/login",
    response_model=w.AuthSessionResponse,
    operation_id="authLogin",
    dependencies=[Depends(anonymous_limit)],
)
async def login(
    body: w.AuthLoginRequest, request: Request, response: Response, session: DbSession, ctx: Ctx
) -> w.AuthSessionResponse:
    """Log in with email and password; sets the HttpOnly session cookie."""
    raw, login_session, user = await auth_service.login(
        session,
        email=body.email,
        password=body.password,
        ttl_seconds=ctx.settings.session_ttl_seconds,
    )
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=ctx.settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure or request.url.scheme == "https",
        path="/",
    )
    return w.AuthSessionResponse(
        user_id=user.id,
        email=user.email,
        role=user.role,
        session_expires_at_unix_ms=login_session.expires_at_ms,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, operation_id="authLogout")
async def logout(request: Request, session: DbSession) -> Response:
    """End the current session and clear its cookie; harmless without one."""
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        principal = await auth_service.end_session(session, raw)
        if principal is not None:
            request.state.principal = principal
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", response_model=w.AuthSessionResponse, operation_id="authMe")
async def me(request: Request, session: DbSession) -> w.AuthSessionResponse:
    """Who the session cookie (or bearer token) belongs to."""
    principal = await authenticate(request, session)
    user, expires = await auth_service.whoami(session, principal)
    return w.AuthSessionResponse(
        user_id=user.id, email=user.email, role=user.role, session_expires_at_unix_ms=expires
    )


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.PasswordResetRequestedResponse,
    operation_id="authPasswordResetRequest",
    dependencies=[Depends(anonymous_limit)],
)
async def password_reset_request(
    body: w.PasswordResetRequest, session: DbSession, ctx: Ctx
) -> w.PasswordResetRequestedResponse:
    """Mail a single-use reset token if the account exists; the answer is the same either way."""
    expires = await auth_service.request_password_reset(
        session,
        email=body.email,
        ttl_seconds=ctx.settings.password_reset_ttl_seconds,
        mailer=ctx.mailer,
        public_base_url=ctx.settings.public_base_url,
    )
    return w.PasswordResetRequestedResponse(
        accepted=True, reset_token="", expires_at_unix_ms=expires
    )


@router.post(
    "/password-reset/confirm",
    response_model=w.PasswordResetConfirmedResponse,
    operation_id="authPasswordResetConfirm",
    dependencies=[Depends(anonymous_limit)],
)
async def password_reset_confirm(
    body: w.PasswordResetConfirmRequest, session: DbSession
) -> w.PasswordResetConfirmedResponse:
    """Set a new password with a reset token; ends every session of that user."""
    await auth_service.confirm_password_reset(
        session, reset_token=body.reset_token, new_password=body.new_password
    )
    return w.PasswordResetConfirmedResponse(accepted=True)
