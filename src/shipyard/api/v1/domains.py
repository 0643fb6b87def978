"""Domains routed to an app."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shipyard.api.deps import Admin, Ctx, DbSession, Reader
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.domains import service as domains_service

router = APIRouter(prefix=f"{V1}/apps/{{app_id}}/domains", tags=["domains"], responses=ERRORS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=w.DomainSummary,
    operation_id="createDomain",
    responses={409: {"model": w.ApiErrorResponse, "description": "Domain already in use"}},
)
async def create_domain(
    app_id: str, body: w.CreateDomainRequest, principal: Admin, session: DbSession, ctx: Ctx
) -> w.DomainSummary:
    """Route a hostname to the app (unique across the installation); the proxy serves it at once."""
    domain = await domains_service.add_domain(
        session,
        principal,
        app_id,
        hostname=body.domain,
        tls_mode=body.tls_mode,
        cert_path=body.cert_path,
        key_path=body.key_path,
    )
    await session.commit()
    ctx.wake_engine()  # the proxy's routes are reloaded by a job
    return views.domain(domain)


@router.get("", response_model=w.DomainListResponse, operation_id="listDomains")
async def list_domains(app_id: str, principal: Reader, session: DbSession) -> w.DomainListResponse:
    """List the app's domains."""
    rows = await domains_service.list_domains(session, principal, app_id)
    return w.DomainListResponse(items=[views.domain(d) for d in rows])


@router.delete("/{domain_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="deleteDomain")
async def delete_domain(
    app_id: str, domain_id: str, principal: Admin, session: DbSession, ctx: Ctx
) -> Response:
    """Remove a domain from the app; the proxy stops serving it at once."""
    await domains_service.remove_domain(session, principal, app_id, domain_id)
    await session.commit()
    ctx.wake_engine()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
