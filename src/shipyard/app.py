"""create_app(): settings, lifespan, middleware, routers."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shipyard import __version__
from shipyard.api import errors
from shipyard.api.metrics import router as metrics_router
from shipyard.api.middleware import RequestMiddleware
from shipyard.api.v1.router import router as v1_router
from shipyard.auth.service import drain_outbox
from shipyard.config import Settings
from shipyard.context import AppContext
from shipyard.dialects.rustci import errors as rustci_errors
from shipyard.dialects.rustci.router import router as rustci_router
from shipyard.dialects.rustci.ws import router as rustci_ws_router

log = logging.getLogger("shipyard")


def release_freed_memory() -> None:
    """Hand memory freed during start-up (migrations, imports) back to the OS, and keep the
    long-lived start-up objects out of later garbage collections.

    glibc keeps freed heap pages for reuse; an idle server would carry them for nothing. The
    objects made at start-up (modules, routes, models) live as long as the process: scanning
    them in every full collection cost 15-20% of the CPU under load (bench/RESULTS.md).
    """
    gc.collect()
    gc.freeze()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


DESCRIPTION = """Shipyard builds, runs, routes and rolls back your apps.

Authenticate with `Authorization: Bearer <token>` (create tokens with `POST /api/v1/tokens`) or
the session cookie set by `POST /api/v1/auth/login`. Errors use one envelope:
`{"error": {"code", "message", "details": [{"field", "message"}]}}`, and every response carries an
`X-Request-Id` header.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; the context (database, keys) opens in the lifespan."""
    settings = settings or Settings()
    ctx = AppContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start(engine=True)
        release_freed_memory()
        log.info("Shipyard %s ready; data in %s", __version__, settings.resolved_data_dir)
        try:
            yield
        finally:
            await drain_outbox()
            await ctx.stop()

    app = FastAPI(
        title="Shipyard API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.ctx = ctx
    errors.install(app)
    for prefix in rustci_errors.PREFIXES:
        errors.register_renderer(prefix, rustci_errors.render)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(v1_router)
    app.include_router(metrics_router)
    app.include_router(rustci_router)
    app.include_router(rustci_ws_router)
    return app
