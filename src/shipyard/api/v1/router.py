"""All /api/v1 routes."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.api.v1 import apps, auth, domains, env, health, tokens, users

router = APIRouter(prefix="/api/v1")
for module in (health, auth, tokens, users, apps, env, domains):
    router.include_router(module.router)
