"""Queries on GitHub integrations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.models import GithubIntegration


async def for_repository(session: AsyncSession, owner: str, repo: str) -> list[GithubIntegration]:
    """The integrations of ``owner/repo``; GitHub names are case-insensitive."""
    rows = await session.execute(
        select(GithubIntegration)
        .where(
            func.lower(GithubIntegration.owner) == owner.lower(),
            func.lower(GithubIntegration.repo) == repo.lower(),
        )
        .order_by(GithubIntegration.app_id)
    )
    return list(rows.scalars())
