"""Deploy from git through a real runtime and a real Caddy: serve, redeploy, roll back, fail safely."""

from __future__ import annotations

from tests.deployments.conftest import Platform, Source


async def test_deploy_from_git_serves_through_the_proxy(platform: Platform, source: Source) -> None:
    app = await platform.app(
        "web",
        repository={"clone_url": source.url},
        source={"branch": "main"},
        runtime={"port": 8080},
    )
    r = await platform.api.client.put(
        f"/api/v1/apps/{app['id']}/env",
        json={"key": "GREETING", "value": "hello-secret"},
        headers=platform.headers,
    )
    assert r.status_code == 200
    deployment = await platform.deploy(app["id"])
    done = await platform.wait(app["id"], deployment)
    assert done["status"] == "healthy", await platform.logs(app["id"], deployment)
    assert [s["status"] for s in done["steps"]] == ["succeeded"] * 9
    served = await platform.get("web.localhost")
    assert served.status_code == 200 and served.text == "VERSION=v1 GREETING=hello-secret"
    assert "hello-secret" not in await platform.logs(app["id"], deployment)


async def test_redeploy_and_rollback(platform: Platform, source: Source) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    first = await platform.deploy(app["id"])
    assert (await platform.wait(app["id"], first))["status"] == "healthy"
    source.commit("v2")
    second = await platform.deploy(app["id"])
    assert (await platform.wait(app["id"], second))["status"] == "healthy"
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v2")
    r = await platform.api.client.post(
        f"/api/v1/apps/{app['id']}/rollback", headers=platform.headers
    )
    assert r.status_code == 202
    back = await platform.wait(app["id"], r.json()["deployment_id"])
    assert back["status"] == "healthy", await platform.logs(app["id"], back["id"])
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v1")


async def test_a_failing_health_check_leaves_the_old_release_serving(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    source.commit("v2", **{"app.py": "import sys; print('boom', file=sys.stderr); sys.exit(3)\n"})
    failed = await platform.wait(app["id"], await platform.deploy(app["id"]))
    assert failed["status"] == "failed" and failed["last_error"]
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v1")


async def test_a_failing_release_command_leaves_the_old_release_serving(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    source.commit("v2", **{"shipyard.yaml": "release: sh -c 'echo migrating; exit 4'\n"})
    failed = await platform.wait(app["id"], await platform.deploy(app["id"]))
    assert failed["status"] == "failed" and "exited with code 4" in failed["last_error"]
    assert "migrating" in await platform.logs(app["id"], failed["id"])
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v1")


async def test_an_invalid_manifest_fails_with_the_field_path(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    source.commit("v1b", **{"shipyard.yaml": "port: 99999\n"})
    failed = await platform.wait(app["id"], await platform.deploy(app["id"]))
    assert failed["status"] == "failed" and "port" in failed["last_error"]


async def test_the_same_request_while_queued_returns_the_same_deployment(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    first = await platform.deploy(app["id"], commit_sha=None)
    again = await platform.deploy(app["id"], commit_sha=None)
    assert first == again
    await platform.wait(app["id"], first)
