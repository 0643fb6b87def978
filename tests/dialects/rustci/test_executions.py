"""RustCI executions on the real engine: real git checkouts and real processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from tests.dialects.rustci.conftest import CI, stage, step
from tests.dialects.rustci.test_workspaces import assert_rustci_error


def _steps(detail: dict[str, object]) -> dict[str, dict[str, object]]:
    return {f"{s['name']}/{x['name']}": x for s in detail["stages"] for x in s["steps"]}  # type: ignore[attr-defined]


async def test_start_answers_202_queued(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("build", step("s", "true"))])
    r = await ci.request(
        "POST",
        f"/api/pipelines/{p['id']}/executions",
        json={"trigger": "manual", "branch": "main", "variables": {"X": "1"}},
    )
    assert r.status_code == 202
    body = r.json()
    assert (
        body["status"] == "queued"
        and body["started_at"] is None
        and body["variables"] == {"X": "1"}
    )


async def test_steps_run_in_the_checkout_and_complete(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("build", step("read", "cat README.md && sh script.sh"))])
    done = await ci.wait((await ci.start(p["id"]))["id"])
    assert done["status"] == "completed"
    only = _steps(done)["build/read"]
    assert only["status"] == "completed" and only["exit_code"] == 0
    assert only["logs_url"] == f"/api/executions/{done['id']}/logs/build/read"
    logs = await ci.logs(done["id"], "build", "read")
    assert [line["message"] for line in logs["logs"]][-2:] == ["hello", "from-repo"]
    assert logs["has_more"] is False and logs["logs"][0]["level"] == "INFO"


async def test_dependent_stages_wait_and_independent_ones_run_in_parallel(
    ci: CI, repo: str
) -> None:
    ws = await ci.workspace(repo)
    stages = [
        stage("a", step("s", "sleep 1; date +%s.%N > ../a.end 2>/dev/null; true")),
        stage("b", step("s", "sleep 1")),
        stage("c", step("s", "true"), depends_on=["a", "b"]),
    ]
    p = await ci.pipeline(ws["id"], stages)
    started = time.monotonic()
    done = await ci.wait((await ci.start(p["id"]))["id"])
    elapsed = time.monotonic() - started
    steps = _steps(done)
    assert done["status"] == "completed"
    assert elapsed < 1.9, "a and b should have run at the same time"
    assert steps["c/s"]["started_at"] >= max(
        steps["a/s"]["completed_at"], steps["b/s"]["completed_at"]
    )  # type: ignore[operator]


async def test_a_failed_step_fails_its_stage_and_skips_dependents(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    stages = [
        stage("build", step("one", "exit 3"), step("two", "true")),
        stage("deploy", step("ship", "true"), depends_on=["build"]),
    ]
    p = await ci.pipeline(ws["id"], stages)
    done = await ci.wait((await ci.start(p["id"]))["id"])
    steps = _steps(done)
    assert done["status"] == "failed"
    assert steps["build/one"]["status"] == "failed" and steps["build/one"]["exit_code"] == 3
    assert steps["build/two"]["status"] == "skipped" and steps["deploy/ship"]["status"] == "skipped"
    assert [s["status"] for s in done["stages"]] == ["failed", "skipped"]  # type: ignore[index]


async def test_variable_precedence(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    cmd = 'echo "$A $B $C"'
    p = await ci.pipeline(
        ws["id"],
        [stage("s", step("env", cmd, environment={"C": "step"}))],
        variables={"A": "pipeline", "B": "pipeline", "C": "pipeline"},
    )
    done = await ci.wait(
        (await ci.start(p["id"], variables={"B": "execution", "C": "execution"}))["id"]
    )
    logs = await ci.logs(done["id"], "s", "env")
    assert logs["logs"][-1]["message"] == "pipeline execution step"


async def test_secrets_reach_steps_but_never_the_logs(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    r = await ci.request(
        "PUT", f"/api/workspaces/{ws['id']}/secrets", json={"secrets": {"API_KEY": "sup3r-s3cret"}}
    )
    assert r.json()["secrets"] == ["API_KEY"]
    p = await ci.pipeline(
        ws["id"], [stage("s", step("leak", 'echo "key=$API_KEY"; test "$API_KEY" = sup3r-s3cret'))]
    )
    done = await ci.wait((await ci.start(p["id"]))["id"])
    assert done["status"] == "completed"
    logs = await ci.logs(done["id"], "s", "leak")
    assert "key=********" in [line["message"] for line in logs["logs"]]
    assert "sup3r-s3cret" not in str(logs)


async def test_cancel_stops_a_running_step_and_its_process(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("long", "echo $$ > ../pid; exec sleep 600"))])
    ex = await ci.start(p["id"])
    pid_file = None
    for _ in range(200):
        detail = (await ci.request("GET", f"/api/executions/{ex['id']}")).json()
        if _steps(detail)["s/long"]["status"] == "running":
            logs = await ci.logs(ex["id"], "s", "long")
            if logs["logs"]:
                break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    pids = [int(x) for x in os.popen("pgrep -f 'sleep 600'").read().split()]  # noqa: S605
    assert pids, "the step's process should be running"
    r = await ci.request("POST", f"/api/executions/{ex['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["cancelled_at"]
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"
    detail = (await ci.request("GET", f"/api/executions/{ex['id']}")).json()
    assert _steps(detail)["s/long"]["status"] == "cancelled"
    del pid_file


async def test_cancel_of_a_queued_execution(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("x", "true"))])
    ex = await ci.start(p["id"])
    r = await ci.request("POST", f"/api/executions/{ex['id']}/cancel")
    assert r.json()["status"] in ("cancelled", "completed")


async def test_step_timeout(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("slow", "sleep 30", timeout_seconds=1))])
    started = time.monotonic()
    done = await ci.wait((await ci.start(p["id"]))["id"])
    assert time.monotonic() - started < 15
    assert done["status"] == "failed"
    assert _steps(done)["s/slow"]["message"] == "timed out after 1 s"


async def test_logs_tail_and_has_more(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("count", "seq 1 50"))])
    done = await ci.wait((await ci.start(p["id"]))["id"])
    logs = await ci.logs(done["id"], "s", "count", tail=3)
    assert [x["message"] for x in logs["logs"]] == ["48", "49", "50"] and logs["has_more"] is True


async def test_follow_streams_until_the_step_ends(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(
        ws["id"], [stage("s", step("tick", "for i in 1 2 3; do echo t$i; sleep 0.3; done"))]
    )
    ex = await ci.start(p["id"])
    lines = []
    async with ci.api.client.stream(
        "GET",
        f"/v1/api/executions/{ex['id']}/logs/s/tick",
        params={"follow": "true"},
        headers=ci.headers,
    ) as r:
        async for raw in r.aiter_lines():
            if raw:
                lines.append(raw)
    messages = [__import__("json").loads(x)["message"] for x in lines]
    assert messages[-3:] == ["t1", "t2", "t3"]


async def test_missing_step_logs_is_404(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("x", "true"))])
    ex = await ci.start(p["id"])
    r = await ci.request("GET", f"/api/executions/{ex['id']}/logs/s/nope")
    assert_rustci_error(r, 404, "NotFoundError")


async def test_checkout_of_a_missing_branch_fails_the_execution(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("x", "true"))])
    done = await ci.wait((await ci.start(p["id"], branch="nope"))["id"])
    assert done["status"] == "failed" and "checkout failed" in done["error"]
    assert _steps(done)["s/x"]["status"] == "skipped"


async def test_ten_executions_at_once_all_finish(ci: CI, repo: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(ws["id"], [stage("s", step("x", "true"))])
    ids = [(await ci.start(p["id"]))["id"] for _ in range(10)]
    results = [await ci.wait(i) for i in ids]
    assert {r["status"] for r in results} == {"completed"}
    got = await ci.request("GET", f"/api/pipelines/{p['id']}")
    assert got.json()["executions_count"] == 10
