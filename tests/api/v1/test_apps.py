"""Apps: create, list, read, update, delete, effective config; ownership."""

from __future__ import annotations

from fastapi import FastAPI

from shipyard.models import App
from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope, assert_matches_contract


async def test_create_app_answers_201_with_the_contract_shape(api: Api, admin: Actor) -> None:
    r = await api.client.post("/api/v1/apps", json={"name": "web"}, headers=admin.headers)
    assert r.status_code == 201
    assert_matches_contract(r, "createApp")
    body = r.json()
    assert body["name"] == "web" and body["created_at_unix_ms"] == body["updated_at_unix_ms"]
    assert body["server_id"]  # placed on the built-in local server


async def test_create_git_app_keeps_its_source(api: Api, admin: Actor) -> None:
    app = await api.create_app(
        admin,
        "api",
        repository={"provider": "github", "owner": "acme", "name": "api", "default_branch": "main"},
        source={"branch": "release"},
        runtime={"port": 8080, "healthcheck_path": "/healthz"},
    )
    assert app["source_type"] == "git"
    assert app["repository"]["clone_url"] == "https://github.com/acme/api.git"
    assert app["source"]["branch"] == "release"
    assert app["runtime"] == {"port": 8080, "healthcheck_path": "/healthz"}


async def test_create_image_app(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "cache", image_ref="redis:7")
    assert app["source_type"] == "image" and app["image_ref"] == "redis:7"


async def test_list_apps_matches_the_contract(api: Api, admin: Actor) -> None:
    await api.create_app(admin, "one")
    await api.create_app(admin, "two")
    r = await api.client.get("/api/v1/apps", headers=admin.headers)
    assert r.status_code == 200
    assert_matches_contract(r, "listApps")
    assert [a["name"] for a in r.json()["items"]] == ["one", "two"]


async def test_each_listed_app_is_the_app_as_read_one_by_one(
    api: Api, admin: Actor, app: FastAPI
) -> None:
    # The list is serialised by the database (app_json_sql.py), the single app by Python.
    await api.create_app(
        admin,
        "git-app",
        repository={"provider": "github", "owner": "acme", "name": "api", "default_branch": "main"},
        source={"branch": "release", "commit_sha": "a" * 40},
        runtime={"port": 8080, "healthcheck_path": "/healthz"},
    )
    await api.create_app(admin, "image-app", image_ref="redis:7")
    await api.create_app(admin, "plain-app")
    live = await api.create_app(admin, "live-app", compose_file="docker-compose.yml")
    async with app.state.ctx.database.transaction() as session:
        row = await session.get(App, live["id"])
        assert row is not None
        row.live_release_id, row.state = "01a20000-0000-7000-8000-000000000000", "stopped"
    listed = (await api.client.get("/api/v1/apps", headers=admin.headers)).json()["items"]
    assert len(listed) == 4
    for item in listed:
        one = await api.client.get(f"/api/v1/apps/{item['id']}", headers=admin.headers)
        assert item == one.json()
    assert [a["state"] for a in listed if a["name"] == "live-app"] == ["stopped"]


async def test_duplicate_name_is_409(api: Api, admin: Actor) -> None:
    await api.create_app(admin, "web")
    r = await api.client.post("/api/v1/apps", json={"name": "web"}, headers=admin.headers)
    assert_error_envelope(r, 409, "conflict")


async def test_bad_name_says_what_to_use(api: Api, admin: Actor) -> None:
    r = await api.client.post("/api/v1/apps", json={"name": "My App"}, headers=admin.headers)
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"][0]["field"] == "name"
    assert "my-app" in error["details"][0]["message"]


async def test_bad_clone_url_is_rejected(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/apps",
        json={"name": "x", "repository": {"clone_url": "ftp://example.com/x"}},
        headers=admin.headers,
    )
    error = assert_error_envelope(r, 400)
    assert error["details"][0]["field"] == "repository.clone_url"


async def test_get_one_app(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "web")
    r = await api.client.get(f"/api/v1/apps/{app['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["id"] == app["id"]


async def test_update_changes_only_given_fields(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "web", image_ref="nginx:1")
    r = await api.client.patch(
        f"/api/v1/apps/{app['id']}", json={"runtime": {"port": 80}}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json()["image_ref"] == "nginx:1" and r.json()["runtime"]["port"] == 80
    assert r.json()["updated_at_unix_ms"] >= app["updated_at_unix_ms"]


async def test_rename_to_a_taken_name_is_409(api: Api, admin: Actor) -> None:
    await api.create_app(admin, "one")
    two = await api.create_app(admin, "two")
    r = await api.client.patch(
        f"/api/v1/apps/{two['id']}", json={"name": "one"}, headers=admin.headers
    )
    assert_error_envelope(r, 409)


async def test_delete_removes_the_app_and_its_domains(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "web")
    await api.client.post(
        f"/api/v1/apps/{app['id']}/domains",
        json={"domain": "web.example.com"},
        headers=admin.headers,
    )
    r = await api.client.delete(f"/api/v1/apps/{app['id']}", headers=admin.headers)
    assert r.status_code == 204
    assert (
        await api.client.get(f"/api/v1/apps/{app['id']}", headers=admin.headers)
    ).status_code == 404
    again = await api.create_app(admin, "web2")
    reused = await api.client.post(
        f"/api/v1/apps/{again['id']}/domains",
        json={"domain": "web.example.com"},
        headers=admin.headers,
    )
    assert reused.status_code == 201


async def test_members_see_only_their_own_apps(api: Api, member: Actor, other: Actor) -> None:
    await api.create_app(member, "mine")
    await api.create_app(other, "theirs")
    r = await api.client.get("/api/v1/apps", headers=member.headers)
    assert [a["name"] for a in r.json()["items"]] == ["mine"]


async def test_admins_see_every_app(api: Api, admin: Actor, member: Actor) -> None:
    await api.create_app(member, "mine")
    r = await api.client.get("/api/v1/apps", headers=admin.headers)
    assert [a["name"] for a in r.json()["items"]] == ["mine"]


async def test_another_users_app_is_the_same_404_as_a_missing_one(
    api: Api, member: Actor, other: Actor
) -> None:
    theirs = await api.create_app(other, "theirs")
    hidden = await api.client.get(f"/api/v1/apps/{theirs['id']}", headers=member.headers)
    missing = await api.client.get(
        "/api/v1/apps/01a20000-0000-7000-8000-000000000000", headers=member.headers
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == missing.json()["error"]


async def test_config_of_a_new_app_matches_the_contract(api: Api, admin: Actor) -> None:
    app = await api.create_app(
        admin, "web", repository={"provider": "github", "owner": "acme", "name": "web"}
    )
    r = await api.client.get(f"/api/v1/apps/{app['id']}/config", headers=admin.headers)
    assert r.status_code == 200
    assert_matches_contract(r, "getAppEffectiveConfig")
    assert r.json()["repository"]["owner"] == "acme"
    assert r.json()["build_mode"] == "auto"
    assert r.json()["detection"]["build_profile"] == "unknown"


async def test_link_local_clone_urls_are_refused(api: Api, admin: Actor) -> None:
    r = await api.client.post(
        "/api/v1/apps",
        json={"name": "x", "repository": {"clone_url": "http://169.254.169.254/repo.git"}},
        headers=admin.headers,
    )
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "repository.clone_url"
