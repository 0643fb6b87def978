"""All /api/v1 routes. Each module's router carries its full path, so route templates in
metrics and audit rows read as clients see them."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.api.v1 import (
    app_import,
    apps,
    auth,
    deployments,
    domains,
    env,
    github,
    health,
    lifecycle,
    tokens,
    users,
)

router = APIRouter()
# app_import before apps: POST /apps/import must never be read as an app id. Routes are tried
# in order, so the most used come first.
for module in (
    app_import,
    apps,
    health,
    auth,
    tokens,
    users,
    env,
    domains,
    deployments,
    lifecycle,
    github,
):
    router.include_router(module.router)
