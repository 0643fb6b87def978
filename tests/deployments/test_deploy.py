"""Deploy from git through a real runtime and a real Caddy: serve, redeploy, roll back, fail."""

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


async def test_a_failing_build_leaves_the_old_release_serving(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    source.commit("v2", **{"shipyard.yaml": "build: sh -c 'echo compiling; exit 5'\n"})
    failed = await platform.wait(app["id"], await platform.deploy(app["id"]))
    assert failed["status"] == "failed" and failed["last_error"]
    assert [s["status"] for s in failed["steps"] if s["name"] == "build"] == ["failed"]
    assert "compiling" in await platform.logs(app["id"], failed["id"])
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


async def test_redeploy_under_constant_load_fails_no_request(
    platform: Platform, source: Source
) -> None:
    """Fresh connections through Caddy all through a redeploy: every one answers 200."""
    import asyncio

    import httpx

    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    source.commit("v2")
    results: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            while not stop.is_set() and len(results) < 5000:
                try:
                    r = await client.get(
                        f"http://127.0.0.1:{platform.http_port}/", headers={"Host": "web.localhost"}
                    )
                    results.append(r.text if r.status_code == 200 else f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    results.append(f"error {exc!r}")

    workers = [asyncio.create_task(load()) for _ in range(4)]
    second = await platform.wait(app["id"], await platform.deploy(app["id"]))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*workers)
    assert second["status"] == "healthy"
    failures = [r for r in results if not r.startswith("VERSION=")]
    assert failures == [] and len(results) > 50
    assert results[0].startswith("VERSION=v1") and results[-1].startswith("VERSION=v2")


async def test_cancel_during_build_stops_and_keeps_serving(
    platform: Platform, source: Source
) -> None:
    import asyncio

    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    source.commit("v2", **{"shipyard.yaml": "build: sleep 60\nstart: python3 app.py\n"})
    deployment = await platform.deploy(app["id"])
    for _ in range(200):
        r = await platform.api.client.get(
            f"/api/v1/apps/{app['id']}/deployments/{deployment}", headers=platform.headers
        )
        if any(s["name"] == "build" and s["status"] == "running" for s in r.json()["steps"]):
            break
        await asyncio.sleep(0.1)
    r = await platform.api.client.post(
        f"/api/v1/apps/{app['id']}/deployments/{deployment}/cancel", headers=platform.headers
    )
    assert r.status_code == 200
    done = await platform.wait(app["id"], deployment, timeout=30)
    assert done["status"] == "failed" and "cancel" in (done["last_error"] or "")
    assert (await platform.get("web.localhost")).text.startswith("VERSION=v1")


async def test_deleting_an_app_stops_its_instances_and_routes(
    platform: Platform, source: Source
) -> None:
    import asyncio

    import httpx

    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    ctx = platform.api.client._transport.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.reading() as session:
        from sqlalchemy import select

        from shipyard.models import Release

        release = await session.scalar(select(Release).where(Release.app_id == app["id"]))
        upstream = release.instances[0]["upstream"]
    assert (
        await platform.api.client.delete(f"/api/v1/apps/{app['id']}", headers=platform.headers)
    ).status_code == 204
    for _ in range(100):
        try:
            httpx.get(f"http://{upstream}/", timeout=1)
        except httpx.HTTPError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the instance still answers after the app was deleted")
    assert (await platform.get("web.localhost")).status_code == 404
