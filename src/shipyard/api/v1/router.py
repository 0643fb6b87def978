"""All /api/v1 routes. Each module's router carries its full path, so route templates in
metrics and audit rows read as clients see them."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.api.v1 import apps, auth, deployments, domains, env, health, tokens, users

router = APIRouter()
for module in (health, auth, tokens, users, apps, env, domains, deployments):
    router.include_router(module.router)
