"""Rules for domains: valid hostnames, global uniqueness, TLS modes."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import service as apps_service
from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.domains import repository
from shipyard.domains.hostnames import normalise_hostname
from shipyard.engine.proxy_sync import request_sync
from shipyard.errors import Conflict, FieldError, Invalid, NotFound
from shipyard.ids import is_uuid, new_id
from shipyard.models import Domain

TLS_MODES = ("managed", "custom")


def _check_tls(tls_mode: str, cert_path: str | None, key_path: str | None) -> list[FieldError]:
    problems = []
    if tls_mode not in TLS_MODES:
        problems.append(FieldError("tls_mode", f"must be one of {', '.join(TLS_MODES)}"))
    elif tls_mode == "custom":
        for name, value in (("cert_path", cert_path), ("key_path", key_path)):
            if not value:
                problems.append(FieldError(name, "is required when tls_mode is custom"))
            elif not value.startswith("/"):
                problems.append(FieldError(name, "must be an absolute path on the server"))
    else:
        for name, value in (("cert_path", cert_path), ("key_path", key_path)):
            if value:
                problems.append(FieldError(name, "only applies when tls_mode is custom"))
    return problems


async def add_domain(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    *,
    hostname: str,
    tls_mode: str | None,
    cert_path: str | None,
    key_path: str | None,
) -> Domain:
    """Route a hostname to the app; a hostname belongs to one app in the whole installation.
    The proxy serves it once the caller has committed (a job reloads the routes)."""
    app = await apps_service.get_app(session, principal, app_id)
    problems: list[FieldError] = []
    try:
        host = normalise_hostname(hostname)
    except ValueError as exc:
        problems.append(FieldError("domain", str(exc)))
    mode = tls_mode or "managed"
    problems += _check_tls(mode, cert_path, key_path)
    if problems:
        raise Invalid("the domain is not valid", problems)
    # Do not say which app holds it: that app may belong to someone else.
    taken = Conflict(f"the domain {host} is already in use", code="domain_taken")
    if await repository.hostname_taken(session, host):
        raise taken
    domain = Domain(
        id=new_id(),
        app_id=app.id,
        hostname=host,
        tls_mode=mode,
        cert_path=cert_path,
        key_path=key_path,
        created_at_ms=now_ms(),
    )
    session.add(domain)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise taken from exc
    await request_sync(session, app)
    return domain


async def list_domains(session: AsyncSession, principal: Principal, app_id: str) -> list[Domain]:
    app = await apps_service.get_app(session, principal, app_id)
    return await repository.list_for_app(session, app.id)


async def remove_domain(
    session: AsyncSession, principal: Principal, app_id: str, domain_id: str
) -> None:
    app = await apps_service.get_app(session, principal, app_id)
    domain = await repository.get(session, domain_id) if is_uuid(domain_id) else None
    if domain is None or domain.app_id != app.id:
        raise NotFound("domain not found")
    await session.delete(domain)
    await session.flush()
    await request_sync(session, app)
