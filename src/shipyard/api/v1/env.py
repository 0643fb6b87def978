"""App environment variables: masked unless an admin asks for values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shipyard.api.deps import Admin, Ctx, DbSession, Reader
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.env import service as env_service
from shipyard.errors import Forbidden

router = APIRouter(prefix=f"{V1}/apps/{{app_id}}/env", tags=["env"], responses=ERRORS)


@router.get("", response_model=w.AppEnvVarListResponse, operation_id="listAppEnvVars")
async def list_env(
    app_id: str,
    principal: Reader,
    session: DbSession,
    ctx: Ctx,
    reveal: Annotated[bool, Query(description="Show values (needs the admin scope).")] = False,
) -> w.AppEnvVarListResponse:
    """List an app's env vars; values are masked unless `reveal=true` with the admin scope."""
    if reveal and not principal.has_scope("admin"):
        raise Forbidden("revealing env values needs a credential with the 'admin' scope")
    items = await env_service.list_env(session, principal, app_id, ctx.keyring, reveal=reveal)
    return w.AppEnvVarListResponse(items=[views.env_var(v) for v in items])


@router.put(
    "",
    response_model=w.AppEnvVarSummary | w.AppEnvVarListResponse,
    operation_id="upsertAppEnvVar",
)
async def upsert_env(
    app_id: str, body: w.UpsertAppEnvVarRequest, principal: Admin, session: DbSession, ctx: Ctx
) -> w.AppEnvVarSummary | w.AppEnvVarListResponse:
    """Set one variable (`key`, `value`) or several (`items`) atomically: all or none."""
    if body.items is None:
        assert body.key is not None and body.value is not None
        [one] = await env_service.upsert_env(
            session, principal, app_id, [(body.key, body.value)], ctx.keyring, field_prefix=""
        )
        return views.env_var(one)
    views_ = await env_service.upsert_env(
        session, principal, app_id, [(i.key, i.value) for i in body.items], ctx.keyring
    )
    return w.AppEnvVarListResponse(items=[views.env_var(v) for v in views_])


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT, operation_id="deleteAppEnvVar")
async def delete_env(app_id: str, key: str, principal: Admin, session: DbSession) -> Response:
    """Delete one env var."""
    await env_service.delete_env(session, principal, app_id, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
