"""Stop, start and restart of a compose app: its release's project goes down and comes back."""

from __future__ import annotations

from typing import Any

from tests.deployments.conftest import Platform
from tests.deployments.test_compose_apps import (  # noqa: F401 - fixtures
    Stack,
    deploy,
    docker_client,
    docker_platform,
    projects,
    stack,
)


async def act(platform: Platform, app_id: str, action: str) -> dict[str, Any]:
    r = await platform.api.client.post(f"/api/v1/apps/{app_id}/{action}", headers=platform.headers)
    assert r.status_code == 202, r.text
    done = await platform.wait(app_id, r.json()["deployment_id"], timeout=180)
    assert done["status"] == "healthy", await platform.logs(app_id, done["id"])
    return done


async def test_a_compose_app_stops_starts_and_restarts(
    docker_platform: Platform,  # noqa: F811 - the fixtures imported above
    stack: Stack,  # noqa: F811
    docker_client: Any,  # noqa: F811
) -> None:
    app = await docker_platform.app(stack.name, repository={"clone_url": stack.path.as_uri()})
    assert (await deploy(docker_platform, app))["status"] == "healthy"
    await act(docker_platform, app["id"], "stop")
    stopped = await docker_platform.get(stack.host)
    assert stopped.status_code == 503 and stopped.text == f"{stack.name} is stopped"
    assert not any(
        c.status == "running"
        for project in projects(docker_client, stack.name)
        for c in docker_client.containers.list(
            filters={"label": f"com.docker.compose.project={project}"}
        )
    )
    await act(docker_platform, app["id"], "start")
    assert (await docker_platform.get(stack.host)).text.startswith("WEB=v1 API=pong BOOTS=2")
    await act(docker_platform, app["id"], "restart")
    assert (await docker_platform.get(stack.host)).text.startswith("WEB=v1 API=pong BOOTS=3")
