"""Shipyard starts again after its apps' instances died (a reboot): it starts them again and
routes to them, without a new deployment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
from typing import Any

import httpx

from shipyard.config import Settings
from tests.deployments.conftest import Platform, Source, make_platform

shipyard = contextlib.asynccontextmanager(make_platform)


async def deployed(platform: Platform, source: Source) -> tuple[dict[str, Any], str]:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    deployment = await platform.deploy(app["id"])
    assert (await platform.wait(app["id"], deployment))["status"] == "healthy"
    return app, await platform.logs(app["id"], deployment)


async def serving(platform: Platform, host: str) -> httpx.Response:
    for _ in range(300):
        r = await platform.get(host)
        if r.status_code == 200:
            return r
        await asyncio.sleep(0.2)
    raise AssertionError(f"{host} is not served: {r.status_code} {r.text}")


async def triggers(platform: Platform, app_id: str) -> list[str]:
    r = await platform.api.client.get(
        f"/api/v1/apps/{app_id}/deployments", headers=platform.headers
    )
    return [d["trigger"] for d in r.json()["items"]]


def kill_processes(settings: Settings) -> None:
    """What a reboot does to the process runtime's instances."""
    for state in (settings.resolved_data_dir / "process" / "instances").glob("*.json"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(json.loads(state.read_text())["pid"]), signal.SIGKILL)


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True)


async def test_dead_processes_are_started_again(
    settings: Settings, source: Source, caddy_installed: None
) -> None:
    try:
        async with shipyard(settings, "process", delete_apps=False) as first:
            app, _ = await deployed(first, source)
    finally:
        kill_processes(settings)
    async with shipyard(settings, "process", headers=first.headers) as second:
        assert (await serving(second, "web.localhost")).text.startswith("VERSION=v1")
        assert await triggers(second, app["id"]) == ["recover", "api"]


async def test_running_processes_are_kept(
    settings: Settings, source: Source, caddy_installed: None
) -> None:
    try:
        async with shipyard(settings, "process", delete_apps=False) as first:
            app, _ = await deployed(first, source)
        async with shipyard(settings, "process", headers=first.headers) as second:
            assert (await serving(second, "web.localhost")).text.startswith("VERSION=v1")
            await asyncio.sleep(1)  # time for a recovery that should not happen
            assert await triggers(second, app["id"]) == ["api"]
    finally:
        kill_processes(settings)


async def test_removed_containers_are_started_again(
    settings: Settings, source: Source, caddy_installed: None, docker_image: str
) -> None:
    name = None
    try:
        async with shipyard(settings, "docker", delete_apps=False) as first:
            app, logs = await deployed(first, source)
            name = re.findall(r"started container (\S+)", logs)[-1]
    finally:
        if name:
            docker("rm", "-f", name)
    async with shipyard(settings, "docker", headers=first.headers) as second:
        assert (await serving(second, "web.localhost")).text.startswith("VERSION=v1")
        assert await triggers(second, app["id"]) == ["recover", "api"]


async def test_a_container_restarted_on_another_port_is_routed_again(
    settings: Settings, source: Source, caddy_installed: None, docker_image: str
) -> None:
    name = None
    try:
        async with shipyard(settings, "docker", delete_apps=False) as first:
            _, logs = await deployed(first, source)
            name = re.findall(r"started container (\S+)", logs)[-1]
        docker("stop", name)
        docker("start", name)  # the engine publishes the port again, on a new host port
    except BaseException:
        if name:
            docker("rm", "-f", name)
        raise
    async with shipyard(settings, "docker", headers=first.headers) as second:
        assert (await serving(second, "web.localhost")).text.startswith("VERSION=v1")
