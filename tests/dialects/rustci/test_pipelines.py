"""RustCI pipelines: validation of the stage graph at create time, listing, details."""

from __future__ import annotations

from tests.dialects.rustci.conftest import CI, stage, step
from tests.dialects.rustci.test_workspaces import assert_rustci_error


async def test_create_pipeline_answers_the_documented_shape(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    body = {
        "name": "deploy-pipeline",
        "stages": [
            stage(
                "build",
                step("compile", "echo", args=["--release"], environment={"RUST_LOG": "info"}),
            ),
            stage("deploy", step("ship", "true"), depends_on=["build"]),
        ],
        "variables": {"ENVIRONMENT": "staging"},
        "triggers": ["push"],
    }
    r = await ci.request("POST", f"/api/workspaces/{ws['id']}/pipelines", json=body)
    assert r.status_code == 201
    p = r.json()
    assert p["workspace_id"] == ws["id"] and p["variables"] == {"ENVIRONMENT": "staging"}
    assert [s["name"] for s in p["stages"]] == ["build", "deploy"] and p["triggers"] == ["push"]


async def test_unknown_dependency_is_rejected_with_its_field(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    r = await ci.request(
        "POST",
        f"/api/workspaces/{ws['id']}/pipelines",
        json={"name": "p", "stages": [stage("test", step("t", "true"), depends_on=["bild"])]},
    )
    error = assert_rustci_error(r, 422, "ValidationError")
    assert error["details"]["field"] == "stages[0].depends_on[0]"  # type: ignore[index]
    assert "bild" in error["details"]["reason"]  # type: ignore[index]


async def test_a_cycle_is_rejected(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    stages = [
        stage("a", step("s", "true"), depends_on=["b"]),
        stage("b", step("s", "true"), depends_on=["a"]),
    ]
    r = await ci.request(
        "POST", f"/api/workspaces/{ws['id']}/pipelines", json={"name": "p", "stages": stages}
    )
    error = assert_rustci_error(r, 422, "ValidationError")
    assert "cycle" in error["details"]["reason"]  # type: ignore[index]


async def test_no_stages_is_rejected(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    r = await ci.request(
        "POST", f"/api/workspaces/{ws['id']}/pipelines", json={"name": "p", "stages": []}
    )
    error = assert_rustci_error(r, 422, "ValidationError")
    assert error["details"] == {
        "field": "stages",
        "reason": "At least one stage is required",
        "errors": [{"field": "stages", "reason": "At least one stage is required"}],
    }


async def test_every_problem_is_listed(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    stages = [{"name": "bad name!", "steps": [{"name": "s"}]}]
    r = await ci.request(
        "POST",
        f"/api/workspaces/{ws['id']}/pipelines",
        json={"name": "p", "stages": stages, "triggers": ["cron"]},
    )
    fields = {
        e["field"] for e in assert_rustci_error(r, 422, "ValidationError")["details"]["errors"]
    }  # type: ignore[index]
    assert fields == {"stages[0].name", "stages[0].steps[0].command", "triggers"}


async def test_list_and_get_pipeline(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("build", step("s", "true"))])
    listed = await ci.request("GET", f"/api/workspaces/{ws['id']}/pipelines")
    assert [x["id"] for x in listed.json()["pipelines"]] == [p["id"]]
    assert listed.json()["pagination"]["total"] == 1
    got = await ci.request("GET", f"/api/pipelines/{p['id']}")
    assert got.json()["executions_count"] == 0 and got.json()["last_execution"] is None


async def test_other_users_pipelines_are_hidden(ci: CI, ci_other: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("build", step("s", "true"))])
    assert_rustci_error(
        await ci_other.request("GET", f"/api/pipelines/{p['id']}"), 404, "NotFoundError"
    )
    r = await ci_other.request(
        "POST", f"/api/pipelines/{p['id']}/executions", json={"trigger": "manual"}
    )
    assert_rustci_error(r, 404, "NotFoundError")
