"""POST /apps/{id}/stop, /start and /restart through a real runtime and a real Caddy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from tests.deployments.conftest import Platform, Source, make_platform


@pytest.fixture
async def processes(settings: Settings, caddy_installed: None) -> AsyncIterator[Platform]:
    """The process runtime only: for rules that do not depend on the runtime."""
    async for p in make_platform(settings, "process"):
        yield p


async def act(platform: Platform, app_id: str, action: str) -> httpx.Response:
    return await platform.api.client.post(
        f"/api/v1/apps/{app_id}/{action}", headers=platform.headers
    )


async def deployed(platform: Platform, source: Source) -> dict[str, Any]:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    done = await platform.wait(app["id"], await platform.deploy(app["id"]))
    assert done["status"] == "healthy", await platform.logs(app["id"], done["id"])
    return app


async def done(platform: Platform, app_id: str, r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    finished = await platform.wait(app_id, r.json()["deployment_id"])
    assert finished["status"] == "healthy", await platform.logs(app_id, finished["id"])
    return finished


async def test_stop_answers_503_until_start_serves_again(
    platform: Platform, source: Source
) -> None:
    app = await deployed(platform, source)
    stop = await act(platform, app["id"], "stop")
    assert stop.json()["action"] == "stop" and stop.json()["state"] == "stopped"
    finished = await done(platform, app["id"], stop)
    assert finished["trigger"] == "stop"
    stopped = await platform.get("web.localhost")
    assert stopped.status_code == 503 and stopped.text == "web is stopped"
    await done(platform, app["id"], await act(platform, app["id"], "start"))
    served = await platform.get("web.localhost")
    assert served.status_code == 200 and served.text.startswith("VERSION=v1")


async def test_the_app_shows_its_state(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    url = f"/api/v1/apps/{app['id']}"
    assert (await processes.api.client.get(url, headers=processes.headers)).json()[
        "state"
    ] == "running"
    await done(processes, app["id"], await act(processes, app["id"], "stop"))
    assert (await processes.api.client.get(url, headers=processes.headers)).json()[
        "state"
    ] == "stopped"


async def test_restart_replaces_the_instances_without_failing_a_request(
    platform: Platform, source: Source
) -> None:
    app = await deployed(platform, source)
    r = await act(platform, app["id"], "restart")
    assert r.status_code == 202 and r.json()["state"] == "running"
    statuses: list[int] = []
    restart = asyncio.ensure_future(platform.wait(app["id"], r.json()["deployment_id"]))
    while not restart.done():
        statuses.append((await platform.get("web.localhost")).status_code)
    finished = restart.result()
    assert finished["status"] == "healthy", await platform.logs(app["id"], finished["id"])
    assert statuses and set(statuses) == {200}
    logs = await platform.logs(app["id"], finished["id"])
    assert "traffic switched to the new instances" in logs and "stopped " in logs
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v1")


async def test_a_deployment_starts_a_stopped_app(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    await done(processes, app["id"], await act(processes, app["id"], "stop"))
    source.commit("v2")
    assert (await processes.wait(app["id"], await processes.deploy(app["id"])))[
        "status"
    ] == "healthy"
    assert (await processes.get("web.localhost")).text.startswith("VERSION=v2")


async def test_restart_of_a_stopped_app_starts_it(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    await done(processes, app["id"], await act(processes, app["id"], "stop"))
    await done(processes, app["id"], await act(processes, app["id"], "restart"))
    assert (await processes.get("web.localhost")).status_code == 200


async def test_nothing_to_stop_before_the_first_deployment(
    processes: Platform, source: Source
) -> None:
    app = await processes.app("web", repository={"clone_url": source.url})
    for action in ("stop", "start", "restart"):
        r = await act(processes, app["id"], action)
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_deployed", r.text


async def test_start_of_a_running_app_is_refused(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    r = await act(processes, app["id"], "start")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_running"


async def test_stop_of_a_stopped_app_is_refused(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    await done(processes, app["id"], await act(processes, app["id"], "stop"))
    r = await act(processes, app["id"], "stop")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_stopped"


async def test_nothing_runs_beside_a_deployment(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    source.commit("v2", **{"shipyard.yaml": "build: sleep 5\nstart: python3 app.py\n"})
    deployment = await processes.deploy(app["id"])
    r = await act(processes, app["id"], "restart")
    assert r.status_code == 409 and r.json()["error"]["code"] == "deployment_in_progress"
    assert deployment in r.json()["error"]["message"]
    await processes.wait(app["id"], deployment)


async def test_other_users_apps_answer_404(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    other = await processes.api.user("other@example.com", scopes=["deploy"])
    r = await processes.api.client.post(f"/api/v1/apps/{app['id']}/stop", headers=other.headers)
    assert r.status_code == 404


async def test_a_read_token_may_not_stop(processes: Platform, source: Source) -> None:
    app = await deployed(processes, source)
    reader = await processes.api.user("reader@example.com", role="admin", scopes=["read"])
    r = await processes.api.client.post(f"/api/v1/apps/{app['id']}/stop", headers=reader.headers)
    assert r.status_code == 403
