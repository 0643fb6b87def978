"""Liveness of the API and its database."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from shipyard import __version__
from shipyard.api.deps import DbSession
from shipyard.api.v1 import V1
from shipyard.api.v1.schemas import HealthResponse

router = APIRouter(prefix=V1, tags=["health"])


@router.get("/health", response_model=HealthResponse, operation_id="health")
async def health(session: DbSession) -> HealthResponse:
    """Health check: answers ok when the API and its database respond."""
    await session.execute(text("SELECT 1"))
    return HealthResponse(status="ok", version=__version__)
