"""RustCI workspaces: CRUD, pagination, filters, ownership, error envelope."""

from __future__ import annotations

import pytest

from tests.dialects.rustci.conftest import CI


def assert_rustci_error(r: object, status: int, kind: str) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    error = r.json()["error"]  # type: ignore[attr-defined]
    assert error["type"] == kind and error["message"] and error["timestamp"].endswith("Z")
    assert error["correlation_id"] == r.headers["x-request-id"]  # type: ignore[attr-defined]
    return dict(error)


async def test_health(ci: CI) -> None:
    r = await ci.api.client.get("/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy" and r.json()["version"] and "uptime" in r.json()


async def test_create_and_get_workspace(ci: CI, repo: str) -> None:
    created = await ci.workspace(repo, name="my-project")
    assert created["branch"] == "main" and created["status"] == "active"
    r = await ci.request("GET", f"/api/workspaces/{created['id']}")
    assert r.json()["pipelines_count"] == 0 and r.json()["last_execution"] is None


async def test_update_workspace(ci: CI, repo: str) -> None:
    created = await ci.workspace(repo)
    r = await ci.request(
        "PUT", f"/api/workspaces/{created['id']}", json={"name": "renamed", "branch": "develop"}
    )
    assert (
        r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["branch"] == "develop"
    )


async def test_delete_workspace(ci: CI, repo: str) -> None:
    created = await ci.workspace(repo)
    assert (await ci.request("DELETE", f"/api/workspaces/{created['id']}")).status_code == 204
    assert_rustci_error(
        await ci.request("GET", f"/api/workspaces/{created['id']}"), 404, "NotFoundError"
    )


async def test_pagination(ci: CI, repo: str) -> None:
    for i in range(5):
        await ci.workspace(repo, name=f"w{i}")
    r = await ci.request("GET", "/api/workspaces", params={"page": 2, "limit": 2})
    body = r.json()
    assert [w["name"] for w in body["workspaces"]] == ["w2", "w3"]
    assert body["pagination"] == {"page": 2, "limit": 2, "total": 5, "total_pages": 3}


async def test_a_page_past_the_end_is_empty(ci: CI, repo: str) -> None:
    await ci.workspace(repo)
    r = await ci.request("GET", "/api/workspaces", params={"page": 9})
    assert r.json()["workspaces"] == [] and r.json()["pagination"]["total"] == 1


@pytest.mark.parametrize(
    ("params", "field"), [({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"page": 0}, "page")]
)
async def test_bad_pagination_is_rejected(ci: CI, params: dict[str, int], field: str) -> None:
    error = assert_rustci_error(
        await ci.request("GET", "/api/workspaces", params=params), 422, "ValidationError"
    )
    assert error["details"]["field"] == field  # type: ignore[index]


async def test_status_filter(ci: CI, repo: str) -> None:
    a = await ci.workspace(repo, name="a")
    await ci.workspace(repo, name="b")
    await ci.request("PUT", f"/api/workspaces/{a['id']}", json={"status": "inactive"})
    r = await ci.request("GET", "/api/workspaces", params={"status": "inactive"})
    assert [w["name"] for w in r.json()["workspaces"]] == ["a"]


async def test_users_see_only_their_workspaces(ci: CI, ci_other: CI, repo: str) -> None:
    mine = await ci.workspace(repo)
    assert (await ci_other.request("GET", "/api/workspaces")).json()["workspaces"] == []
    assert_rustci_error(
        await ci_other.request("GET", f"/api/workspaces/{mine['id']}"), 404, "NotFoundError"
    )
    assert_rustci_error(
        await ci_other.request("DELETE", f"/api/workspaces/{mine['id']}"), 404, "NotFoundError"
    )


async def test_no_token_is_401_in_rustci_shape(ci: CI) -> None:
    assert_rustci_error(await ci.api.client.get("/v1/api/workspaces"), 401, "AuthenticationError")


async def test_bad_repository_url(ci: CI) -> None:
    r = await ci.request(
        "POST", "/api/workspaces", json={"name": "x", "repository_url": "not a url"}
    )
    assert assert_rustci_error(r, 422, "ValidationError")["details"]["field"] == "repository_url"  # type: ignore[index]


async def test_rate_limit_headers(ci: CI) -> None:
    r = await ci.request("GET", "/api/workspaces")
    assert int(r.headers["x-ratelimit-limit"]) > 0 and "x-ratelimit-reset" in r.headers


def test_the_documented_limits_are_the_default() -> None:
    from shipyard.config import Settings

    assert Settings().rate_limit_rustci == "100/minute;1000/hour"


async def test_users_me(ci: CI) -> None:
    r = await ci.request("GET", "/api/users/me")
    assert r.json()["email"] == "dev@example.com" and r.json()["roles"] == ["user"]
    updated = await ci.request("PUT", "/api/users/me", json={"email": "new@example.com"})
    assert updated.json()["email"] == "new@example.com"


async def test_metadata_addresses_are_refused_as_repositories(ci: CI) -> None:
    r = await ci.request(
        "POST",
        "/api/workspaces",
        json={"name": "x", "repository_url": "http://169.254.169.254/latest/meta-data"},
    )
    assert assert_rustci_error(r, 422, "ValidationError")["details"]["field"] == "repository_url"  # type: ignore[index]
