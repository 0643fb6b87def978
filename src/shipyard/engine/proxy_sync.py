"""Render the whole proxy configuration from the database and load it (atomic, no drift)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.config import Settings
from shipyard.drivers.proxy.base import ProxyConfig, Route, TlsMode
from shipyard.drivers.proxy.caddy import CaddyProxy
from shipyard.engine import jobs
from shipyard.engine.states import APP_STOPPED
from shipyard.models import App, Domain, Release

PROXY_SYNC_JOB = "proxy_sync"
STOPPED_BODY = "{name} is stopped"


def local_hostname(app: App, settings: Settings) -> str:
    return f"{app.name}.{settings.local_domain}"


async def request_sync(session: AsyncSession, app: App) -> None:
    """After a change to what routes to this app (a domain, its name), in the caller's
    transaction: a job loads the new routes once it is committed. Nothing while it is not live."""
    if app.live_release_id is not None:
        await jobs.enqueue(session, PROXY_SYNC_JOB, {"app_id": app.id})


async def desired_config(session: AsyncSession, settings: Settings) -> ProxyConfig:
    """Every app with a live release gets its domains and its generated local hostname."""
    routes: list[Route] = []
    apps = (
        await session.execute(select(App).where(App.live_release_id.is_not(None)).order_by(App.id))
    ).scalars()
    for app in apps:
        release = await session.get(Release, app.live_release_id)
        upstreams = [i["upstream"] for i in (release.instances or [])] if release else []
        # A stopped app keeps its routes, answering 503 with this body: clearer than no route.
        unavailable = STOPPED_BODY.format(name=app.name) if app.state == APP_STOPPED else None
        if unavailable:
            upstreams = []
        domains = (await session.execute(select(Domain).where(Domain.app_id == app.id))).scalars()
        managed: list[Domain] = []
        custom: list[Domain] = []
        for domain in domains:
            (custom if domain.tls_mode == "custom" else managed).append(domain)
        if managed:
            tls: TlsMode = settings.proxy_tls  # type: ignore[assignment]  # validated by pattern
            routes.append(
                Route(
                    hostnames=[d.hostname for d in managed],
                    upstreams=upstreams,
                    tls=tls,
                    app_id=app.id,
                    unavailable=unavailable,
                )
            )
        for domain in custom:
            routes.append(
                Route(
                    hostnames=[domain.hostname],
                    upstreams=upstreams,
                    tls="custom",
                    app_id=app.id,
                    cert_path=domain.cert_path,
                    key_path=domain.key_path,
                    unavailable=unavailable,
                )
            )
        local_tls: TlsMode = "off" if settings.proxy_tls == "off" else "internal"
        routes.append(
            Route(
                hostnames=[local_hostname(app, settings)],
                upstreams=upstreams,
                tls=local_tls,
                app_id=app.id,
                unavailable=unavailable,
            )
        )
    return ProxyConfig(
        routes=routes,
        http_port=settings.proxy_http_port,
        https_port=settings.proxy_https_port,
        bind_host=settings.proxy_bind_host,
    )


class ProxySync:
    """Owns the proxy driver; ``apply`` is serialised so configs are loaded in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proxy = CaddyProxy(
            settings.caddy_admin_address,
            Path(settings.resolved_data_dir) / "caddy",
            caddy_binary=settings.caddy_binary,
            owned=settings.caddy_owned,
        )
        self._lock = asyncio.Lock()

    async def apply(self, session: AsyncSession) -> None:
        if not self.settings.proxy_enabled:
            return
        config = await desired_config(session, self.settings)
        async with self._lock:
            await self.proxy.ensure_running()
            await self.proxy.apply(config)

    async def stop(self) -> None:
        await self.proxy.stop()
