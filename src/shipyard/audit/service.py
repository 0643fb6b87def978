"""Record who changed what, through which credential, with what outcome."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.ids import new_id
from shipyard.models import AuditEvent


async def record_request(
    session: AsyncSession,
    principal: Principal,
    *,
    method: str,
    route: str,
    path: str,
    status_code: int,
    request_id: str,
    client_ip: str | None,
) -> None:
    session.add(
        AuditEvent(
            id=new_id(),
            at_ms=now_ms(),
            user_id=principal.user_id,
            token_id=principal.token_id,
            via=principal.via,
            method=method,
            route=route[:256],
            path=path[:1024],
            status_code=status_code,
            request_id=request_id[:64],
            client_ip=client_ip,
        )
    )
    await session.flush()


async def events_for_token(session: AsyncSession, token_id: str) -> list[AuditEvent]:
    rows = await session.execute(
        select(AuditEvent).where(AuditEvent.token_id == token_id).order_by(AuditEvent.id)
    )
    return list(rows.scalars())
