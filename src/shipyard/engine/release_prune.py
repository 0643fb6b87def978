"""Pruning: after a successful deployment, the artifacts of releases beyond the kept number go
(images, build directories, compose releases' images and files; never volumes)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import select

from shipyard.db.engine import Database
from shipyard.drivers.runtime.base import Artifact, LogFn, Runtime
from shipyard.engine import compose_deploy
from shipyard.models import Release


async def prune_releases(
    database: Database, runtime: Runtime, data_dir: Path, app_id: str, keep: int, log: LogFn
) -> None:
    """Keep the live release and the newest keep - 1 others; mark the rest pruned, delete their
    artifacts. A release that is rolled back to must still have its artifact."""
    async with database.transaction() as session:
        rows = list(
            (
                await session.execute(
                    select(Release)
                    .where(Release.app_id == app_id, Release.status.in_(("built", "retired")))
                    .order_by(Release.created_at_ms.desc(), Release.id.desc())
                )
            ).scalars()
        )
        doomed = rows[max(0, keep - 1) :]
        for row in doomed:
            row.status = "pruned"
    for row in doomed:
        if compose_deploy.is_compose_ref(row.artifact_ref):
            await compose_deploy.prune(runtime, data_dir, row.artifact_ref or "")
        elif row.artifact_ref:
            with contextlib.suppress(Exception):
                await runtime.remove_artifact(Artifact(row.artifact_ref, row.start_command))
    await log(f"pruned {len(doomed)} old release(s); keeping {keep}")
