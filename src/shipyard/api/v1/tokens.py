"""API tokens: create (secret shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shipyard.api.deps import DbSession, Reader, UnboundAdmin
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.apps import service as apps_service
from shipyard.tokens import service as tokens_service

router = APIRouter(prefix=f"{V1}/tokens", tags=["tokens"], responses=ERRORS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=w.CreateTokenResponse,
    operation_id="createToken",
)
async def create_token(
    body: w.CreateTokenRequest, principal: UnboundAdmin, session: DbSession
) -> w.CreateTokenResponse:
    """Create a token; the secret is in this response only, Shipyard keeps just its hash."""
    if body.app_id is not None:
        await apps_service.get_app(session, principal, body.app_id)
    raw, token = await tokens_service.create_token(
        session,
        principal,
        name=body.name,
        scopes=body.scopes,
        expires_in_seconds=body.expires_in_seconds,
        kind=body.kind,
        app_id=body.app_id,
    )
    return w.CreateTokenResponse(token=raw, summary=views.token(token))


@router.get("", response_model=w.TokenListResponse, operation_id="listTokens")
async def list_tokens(principal: Reader, session: DbSession) -> w.TokenListResponse:
    """List your tokens (admins: every token), without their secrets."""
    return w.TokenListResponse(
        items=[views.token(t) for t in await tokens_service.list_tokens(session, principal)]
    )


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="revokeToken")
async def revoke_token(token_id: str, principal: UnboundAdmin, session: DbSession) -> Response:
    """Revoke a token; it stops working at once."""
    await tokens_service.revoke_token(session, principal, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
