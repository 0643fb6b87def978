"""Deleting an app removes what its releases left on the machine: images or build directories,
and its git mirror."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from shipyard.config import Settings
from tests.deployments.conftest import Platform, Source


def _images(tag: str) -> str:
    return subprocess.run(
        ["docker", "images", "-q", tag], check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_deleting_an_app_removes_its_release_artifacts(
    platform: Platform, source: Source, settings: Settings
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    deployment = await platform.deploy(app["id"])
    assert (await platform.wait(app["id"], deployment))["status"] == "healthy"
    logs = await platform.logs(app["id"], deployment)
    image = re.search(r"building (shipyard/web:\S+)", logs)
    build_dir = re.search(r"built (/\S+);", logs)
    mirror = Path(settings.resolved_data_dir) / "git" / "apps" / app["id"]
    assert mirror.is_dir()
    if image:
        assert _images(image[1])
    else:
        assert build_dir and Path(build_dir[1]).is_dir(), logs
    await platform.delete_all(platform.ctx)
    if image:
        assert not _images(image[1])
    else:
        assert build_dir and not Path(build_dir[1]).exists()
    assert not mirror.exists()
