"""POST /api/v1/apps/import: a real local git repository is fetched, its manifest read, its build
profile detected, and the app created from it; on any problem nothing is created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope, assert_matches_contract
from tests.deployments.conftest import git


def repo(path: Path, files: dict[str, str], branch: str = "main") -> str:
    """A git repository at ``path`` with ``files`` committed on ``branch``; its file:// URL."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", branch)
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path.as_uri()


async def import_app(api: Api, actor: Actor, **body: Any) -> httpx.Response:
    return await api.client.post("/api/v1/apps/import", json=body, headers=actor.headers)


async def app_names(api: Api, actor: Actor) -> list[str]:
    r = await api.client.get("/api/v1/apps", headers=actor.headers)
    return [a["name"] for a in r.json()["items"]]


PACKAGE = json.dumps({"dependencies": {"express": "4"}, "scripts": {"start": "node server.js"}})
PROFILES = {
    "dockerfile": (
        {"Dockerfile": "FROM local/python:3.11\nEXPOSE 8080\n", "requirements.txt": "flask\n"},
        ("flask", "pip", None, "dockerfile", True),
    ),
    "compose": (
        {"compose.yaml": "services:\n  web:\n    build: .\n    ports: ['8080:80']\n"},
        ("none", "none", None, "compose", False),
    ),
    "procfile": ({"Procfile": "web: ./serve\n"}, ("none", "none", None, "procfile", False)),
    "pip": ({"requirements.txt": "Django>=5\n"}, ("django", "pip", None, "python", False)),
    "uv": (
        {"pyproject.toml": '[project]\nname="a"\ndependencies=["fastapi"]\n', "uv.lock": ""},
        ("fastapi", "uv", "uv.lock", "python", False),
    ),
    "poetry": (
        {"pyproject.toml": "[tool.poetry]\nname='a'\n", "poetry.lock": ""},
        ("none", "poetry", "poetry.lock", "python", False),
    ),
    "npm": (
        {"package.json": PACKAGE, "package-lock.json": "{}"},
        ("express", "npm", "package-lock.json", "node", False),
    ),
    "pnpm": (
        {"package.json": "{}", "pnpm-lock.yaml": ""},
        ("none", "pnpm", "pnpm-lock.yaml", "node", False),
    ),
    "yarn": ({"package.json": "{}", "yarn.lock": ""}, ("none", "yarn", "yarn.lock", "node", False)),
    "go": ({"go.mod": "module a\n", "go.sum": ""}, ("none", "go", "go.sum", "go", False)),
    "cargo": (
        {"Cargo.toml": "[package]\nname='a'\n", "Cargo.lock": ""},
        ("none", "cargo", "Cargo.lock", "rust", False),
    ),
    "static": ({"index.html": "<h1>hi</h1>"}, ("none", "none", None, "static", False)),
}


@pytest.mark.parametrize("profile", PROFILES)
async def test_import_detects_the_build_profile(
    profile: str, api: Api, admin: Actor, tmp_path: Path
) -> None:
    files, expected = PROFILES[profile]
    url = repo(tmp_path / profile, files)
    r = await import_app(api, admin, repository={"clone_url": url})
    assert r.status_code == 201, r.text
    assert_matches_contract(r, "importApp")
    detection = r.json()["detection"]
    fields = ("framework", "package_manager", "lockfile", "build_profile", "dockerfile_present")
    assert tuple(detection[f] for f in fields) == expected


async def test_import_creates_a_git_app_on_its_branch_ready_to_deploy(
    api: Api, admin: Actor, tmp_path: Path
) -> None:
    url = repo(tmp_path / "Hello_App", {"app.py": "print('hi')\n"}, branch="trunk")
    r = await import_app(api, admin, repository={"clone_url": url}, runtime={"port": 8080})
    assert r.status_code == 201, r.text
    body = r.json()
    app = body["app"]
    assert app["name"] == "hello-app"  # from the repository's name
    assert app["source_type"] == "git"
    assert app["repository"]["clone_url"] == url
    assert app["repository"]["default_branch"] == "trunk"  # the repository's HEAD
    assert app["source"]["branch"] == "trunk"
    assert app["runtime"]["port"] == 8080
    assert body["next_action"] == {
        "action_type": "deploy",
        "deploy_endpoint": f"/api/v1/apps/{app['id']}/deployments",
    }
    assert "compose" not in body and body["manifest"] is None
    config = await api.client.get(f"/api/v1/apps/{app['id']}/config", headers=admin.headers)
    assert config.json()["detection"] == body["detection"]


async def test_import_reports_the_compose_services(api: Api, admin: Actor, tmp_path: Path) -> None:
    compose = "services:\n  db:\n    image: postgres:16\n  web:\n    build: .\n    ports: ['80']\n"
    url = repo(tmp_path / "stack", {"docker-compose.yml": compose})
    r = await import_app(api, admin, repository={"clone_url": url}, build_mode="compose")
    assert r.status_code == 201, r.text
    assert_matches_contract(r, "importApp")
    body = r.json()
    assert body["compose"]["file"] == "docker-compose.yml"
    assert body["compose"]["app_service"] == "web"
    assert [s["name"] for s in body["compose"]["services"]] == ["db", "web"]
    assert body["app"]["build_mode"] == "compose"
    assert body["app"]["compose_file"] == "docker-compose.yml"


async def test_import_reads_a_rustploy_manifest(api: Api, admin: Actor, tmp_path: Path) -> None:
    manifest = "start: python3 app.py\nport: 9000\nhealthcheck: /healthz\nenv:\n  MODE: prod\n"
    url = repo(tmp_path / "svc", {"rustploy.yaml": manifest, "app.py": ""})
    r = await import_app(api, admin, repository={"clone_url": url})
    assert r.status_code == 201, r.text
    got = r.json()["manifest"]
    assert (got["start"], got["port"], got["env"]) == ("python3 app.py", 9000, {"MODE": "prod"})
    assert got["healthcheck"]["path"] == "/healthz"


async def test_import_of_a_given_branch_and_commit(api: Api, admin: Actor, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "v1"})
    path = tmp_path / "web"
    first = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "-b", "next")
    (path / "Dockerfile").write_text("FROM scratch\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "docker")
    r = await import_app(
        api, admin, repository={"clone_url": url}, source={"branch": "next"}, name="pinned"
    )
    assert r.json()["detection"]["build_profile"] == "dockerfile"
    r = await import_app(
        api,
        admin,
        repository={"clone_url": url},
        source={"branch": "next", "commit_sha": first[:12]},
        name="older",
    )
    assert r.status_code == 201, r.text
    assert r.json()["commit_sha"] == first
    assert r.json()["detection"]["build_profile"] == "static"
    assert r.json()["app"]["source"] == {"branch": "next", "commit_sha": first[:12]}


async def test_a_taken_name_gets_a_suffix(api: Api, admin: Actor, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    names = [(await import_app(api, admin, repository={"clone_url": url})).json()["app"]["name"]]
    names.append(
        (await import_app(api, admin, repository={"clone_url": url})).json()["app"]["name"]
    )
    assert names == ["web", "web-2"]
    r = await import_app(api, admin, repository={"clone_url": url}, name="web")
    assert_error_envelope(r, 409, "conflict")


async def test_an_invalid_manifest_is_400_with_field_paths_and_creates_nothing(
    api: Api, admin: Actor, tmp_path: Path, settings: Settings
) -> None:
    manifest = "port: 99999\nhealthcheck:\n  path: healthz\nstart: ''\ncolour: blue\n"
    url = repo(tmp_path / "bad", {"shipyard.yaml": manifest, "app.py": ""})
    r = await import_app(api, admin, repository={"clone_url": url})
    error = assert_error_envelope(r, 400, "invalid_manifest")
    fields = {d["field"] for d in error["details"]}
    assert fields == {"port", "healthcheck.path", "start", "colour"}
    assert "shipyard.yaml is invalid" in error["message"]
    assert await app_names(api, admin) == []
    assert not any((settings.data_dir / "git").rglob("HEAD"))  # no mirror left behind


async def test_broken_manifest_yaml_names_the_file_and_line(
    api: Api, admin: Actor, tmp_path: Path
) -> None:
    url = repo(tmp_path / "bad", {"rustploy.yaml": "port: [1\n"})
    error = assert_error_envelope(
        await import_app(api, admin, repository={"clone_url": url}), 400, "invalid_manifest"
    )
    assert error["details"][0]["field"] == "rustploy.yaml"
    assert "line 2" in error["details"][0]["message"]


async def test_an_unknown_branch_names_the_field(api: Api, admin: Actor, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    r = await import_app(api, admin, repository={"clone_url": url}, source={"branch": "nope"})
    error = assert_error_envelope(r, 400, "ref_not_found")
    assert error["details"][0]["field"] == "source.branch"
    assert "'nope'" in error["details"][0]["message"]
    r = await import_app(
        api, admin, repository={"clone_url": url, "default_branch": "gone"}, name="other"
    )
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "repository.default_branch"
    assert await app_names(api, admin) == []


async def test_an_unknown_commit_names_the_field(api: Api, admin: Actor, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    r = await import_app(
        api, admin, repository={"clone_url": url}, source={"commit_sha": "deadbeefdeadbeef"}
    )
    error = assert_error_envelope(r, 400, "ref_not_found")
    assert error["details"][0]["field"] == "source.commit_sha"


async def test_an_unreachable_repository_names_the_field(
    api: Api, admin: Actor, tmp_path: Path
) -> None:
    url = (tmp_path / "missing").as_uri()
    r = await import_app(api, admin, repository={"clone_url": url})
    error = assert_error_envelope(r, 400, "repository_unreachable")
    assert error["details"][0]["field"] == "repository.clone_url"
    assert await app_names(api, admin) == []


@pytest.mark.parametrize(
    "repository",
    [
        {"clone_url": "http://169.254.169.254/latest/meta-data.git"},
        {"clone_url": "ext::sh -c touch% /tmp/pwned"},
        {"provider": "gitlab", "owner": "a", "name": "b"},
    ],
)
async def test_urls_that_must_not_be_fetched_are_refused(
    repository: dict[str, str], api: Api, admin: Actor
) -> None:
    r = await import_app(api, admin, repository=repository)
    error = assert_error_envelope(r, 400)
    assert error["details"][0]["field"] == "repository.clone_url"


async def test_bad_request_fields_are_named(api: Api, admin: Actor, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    for body, field in [
        ({"source": {"branch": "a..b"}}, "source.branch"),
        ({"source": {"commit_sha": "xyz"}}, "source.commit_sha"),
        ({"build_mode": "dockerfile"}, "build_mode"),
        ({"build_mode": "compose"}, "build_mode"),
        ({"name": "Not Valid"}, "name"),
    ]:
        r = await import_app(api, admin, repository={"clone_url": url}, **body)
        assert assert_error_envelope(r, 400)["details"][0]["field"] == field, body
    assert await app_names(api, admin) == []


async def test_import_needs_the_admin_scope(api: Api, tmp_path: Path) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    reader = await api.user("reader@example.com", scopes=["read"])
    deployer = await api.user("deployer@example.com", scopes=["deploy"])
    for actor in (reader, deployer):
        assert_error_envelope(await import_app(api, actor, repository={"clone_url": url}), 403)
    r = await api.client.post("/api/v1/apps/import", json={"repository": {"clone_url": url}})
    assert_error_envelope(r, 401)


async def test_a_members_imported_app_is_theirs_alone(
    api: Api, member: Actor, other: Actor, tmp_path: Path
) -> None:
    url = repo(tmp_path / "web", {"index.html": "hi"})
    r = await import_app(api, member, repository={"clone_url": url})
    assert r.json()["app"]["owner_id"] == member.user_id
    assert await app_names(api, other) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "repository"),
        ({"repository": {"clone_url": "file:///x"}, "colour": "blue"}, "colour"),
        ({"repository": {"clone_url": "file:///x"}, "build_mode": "magic"}, "build_mode"),
        ({"repository": {"clone_url": "file:///x"}, "runtime": {"port": 0}}, "runtime.port"),
    ],
)
async def test_malformed_requests_are_400_naming_the_field(
    body: dict[str, Any], field: str, api: Api, admin: Actor
) -> None:
    r = await api.client.post("/api/v1/apps/import", json=body, headers=admin.headers)
    error = assert_error_envelope(r, 400, "validation_error")
    assert field in [d["field"] for d in error["details"]]
