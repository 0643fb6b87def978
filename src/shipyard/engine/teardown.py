"""Cleans up after a deleted app: stops its instances, drops its routes, and removes its release
artifacts (images, build directories) and git mirror. Named volumes stay."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from shipyard.db.engine import Database
from shipyard.drivers.runtime.base import Artifact, Runtime
from shipyard.engine import compose_deploy
from shipyard.engine.jobs import ClaimedJob
from shipyard.engine.proxy_sync import ProxySync


class Teardown:
    """Stops the instances of a deleted app, drops its routes, and removes its release artifacts
    (images, build directories) and git mirror; named volumes stay."""

    def __init__(
        self,
        database: Database,
        runtimes: dict[str, Runtime],
        proxy: ProxySync,
        grace: float,
        data_dir: Path,
    ) -> None:
        self.database, self.runtimes, self.proxy, self.grace = database, runtimes, proxy, grace
        self.data_dir = data_dir

    async def handle(self, job: ClaimedJob) -> None:
        async with self.database.reading() as session:
            await self.proxy.apply(session)  # the app's rows are gone: its routes go too
        for inst in job.payload["instances"]:
            runtime = self.runtimes.get(inst.get("runtime", ""))
            if runtime is not None:
                await compose_deploy.stop(runtime, inst, inst["release_id"], self.grace)
        for artifact in job.payload.get("artifacts", []):
            runtime = self.runtimes.get(artifact["runtime"])
            if runtime is None:
                continue
            with contextlib.suppress(Exception):  # one that cannot go must not keep the others
                if compose_deploy.is_compose_ref(artifact["ref"]):
                    await compose_deploy.prune(runtime, self.data_dir, artifact["ref"])
                else:
                    await runtime.remove_artifact(Artifact(artifact["ref"]))
        if job.payload.get("app_id"):
            mirror = self.data_dir / "git" / "apps" / str(job.payload["app_id"])
            await asyncio.to_thread(shutil.rmtree, mirror, True)
