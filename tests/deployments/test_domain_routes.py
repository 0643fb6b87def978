"""Adding or removing a domain changes what the real proxy serves, without a deployment."""

from __future__ import annotations

import asyncio

import httpx

from tests.deployments.conftest import Platform, Source


async def served_as(platform: Platform, host: str, status: int) -> httpx.Response:
    """The proxy's answer for ``host`` once it is ``status`` (routes load a moment later)."""
    for _ in range(100):
        r = await platform.get(host)
        if r.status_code == status:
            return r
        await asyncio.sleep(0.1)
    raise AssertionError(f"{host}: still {r.status_code} {r.text}")


async def test_an_added_domain_is_served_and_a_removed_one_no_longer(
    platform: Platform, source: Source
) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    assert (await platform.get("shop.example.test")).status_code == 404
    r = await platform.api.client.post(
        f"/api/v1/apps/{app['id']}/domains",
        json={"domain": "shop.example.test"},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    assert (await served_as(platform, "shop.example.test", 200)).text.startswith("VERSION=v1")
    r = await platform.api.client.delete(
        f"/api/v1/apps/{app['id']}/domains/{r.json()['id']}", headers=platform.headers
    )
    assert r.status_code == 204
    assert (await served_as(platform, "shop.example.test", 404)).text == "no route"
    assert (await platform.get("web.localhost")).status_code == 200


async def test_a_renamed_app_is_served_at_its_new_name(platform: Platform, source: Source) -> None:
    app = await platform.app("web", repository={"clone_url": source.url}, runtime={"port": 8080})
    assert (await platform.wait(app["id"], await platform.deploy(app["id"])))["status"] == "healthy"
    r = await platform.api.client.patch(
        f"/api/v1/apps/{app['id']}", json={"name": "shop"}, headers=platform.headers
    )
    assert r.status_code == 200, r.text
    assert (await served_as(platform, "shop.localhost", 200)).text.startswith("VERSION=v1")
    assert (await served_as(platform, "web.localhost", 404)).text == "no route"
