"""The docker executor in a pipeline: a container per step with the checkout mounted."""

from __future__ import annotations

import asyncio

import docker

from tests.dialects.rustci.conftest import CI, stage, step


async def test_a_docker_step_sees_the_checkout(ci: CI, repo: str, docker_image: str) -> None:
    ws = await ci.workspace(repo)
    command = "python3 -c \"print(open('README.md').read().strip(), end='')\""
    p = await ci.pipeline(
        ws["id"], [stage("s", step("py", command, executor="docker", image=docker_image))]
    )
    done = await ci.wait((await ci.start(p["id"]))["id"])
    assert done["status"] == "completed", done
    logs = await ci.logs(done["id"], "s", "py")
    assert logs["logs"][-1]["message"] == "hello"


async def test_cancel_stops_the_steps_container(ci: CI, repo: str, docker_image: str) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(
        ws["id"],
        [
            stage(
                "s", step("long", "echo started; sleep 600", executor="docker", image=docker_image)
            )
        ],
    )
    ex = await ci.start(p["id"])
    for _ in range(300):
        if (await ci.logs(ex["id"], "s", "long"))["logs"][1:]:
            break
        await asyncio.sleep(0.05)
    r = await ci.request("POST", f"/api/executions/{ex['id']}/cancel")
    assert r.json()["status"] == "cancelled"
    client = docker.from_env()
    try:
        left = client.containers.list(all=True, filters={"label": f"shipyard.run={ex['id']}"})
    finally:
        client.close()
    assert left == []


async def test_a_missing_image_fails_the_step_with_a_clear_message(
    ci: CI, repo: str, docker_image: str
) -> None:
    ws = await ci.workspace(repo)
    p = await ci.pipeline(
        ws["id"], [stage("s", step("x", "true", executor="docker", image="local/nope:1"))]
    )
    done = await ci.wait((await ci.start(p["id"]))["id"])
    only = done["stages"][0]["steps"][0]
    assert done["status"] == "failed" and "local/nope:1" in only["message"]
