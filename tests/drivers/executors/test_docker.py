"""DockerExecutor against the real Docker Engine: one container per step, workspace mounted."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from shipyard.drivers.executors.base import StepSpec
from shipyard.drivers.executors.docker import DockerExecutor, DockerProcess
from shipyard.errors import NotFound


@pytest.fixture
def spec_for(docker_image: str, tmp_path: Path, step_labels: dict[str, str]) -> Any:
    def make(script: str, **fields: Any) -> StepSpec:
        fields.setdefault("image", docker_image)
        return StepSpec(argv=["sh", "-c", script], workdir=tmp_path, labels=step_labels, **fields)

    return make


async def run(executor: DockerExecutor, spec: StepSpec) -> tuple[list[str], int]:
    process = await executor.start(spec)
    lines = [line async for line in process.lines()]
    return lines, await asyncio.wait_for(process.wait(), 30)


def containers(client: Any, labels: dict[str, str]) -> list[Any]:
    (key, value), *_ = labels.items()
    return list(client.containers.list(all=True, filters={"label": f"{key}={value}"}))


async def test_lines_arrive_in_order(docker_executor: DockerExecutor, spec_for: Any) -> None:
    lines, _ = await run(
        docker_executor, spec_for("i=1; while [ $i -le 200 ]; do echo $i; i=$((i+1)); done")
    )

    assert lines == [str(i) for i in range(1, 201)]


async def test_stderr_is_merged_into_the_lines(
    docker_executor: DockerExecutor, spec_for: Any
) -> None:
    lines, _ = await run(docker_executor, spec_for("echo to-stdout; echo to-stderr >&2"))

    assert sorted(lines) == ["to-stderr", "to-stdout"]


async def test_exit_code_is_returned(docker_executor: DockerExecutor, spec_for: Any) -> None:
    _, code = await run(docker_executor, spec_for("exit 3"))

    assert code == 3


async def test_env_vars_reach_the_step(docker_executor: DockerExecutor, spec_for: Any) -> None:
    spec = spec_for('echo "$GREETING"', env={"GREETING": "hello world"})

    lines, _ = await run(docker_executor, spec)

    assert lines == ["hello world"]


async def test_workdir_is_mounted_read_write_as_the_working_dir(
    docker_executor: DockerExecutor, spec_for: Any, tmp_path: Path
) -> None:
    (tmp_path / "input.txt").write_text("from the host\n")

    lines, code = await run(docker_executor, spec_for("pwd; cat input.txt > output.txt"))

    assert (lines, code) == (["/workspace"], 0)
    assert (tmp_path / "output.txt").read_text() == "from the host\n"


async def test_invalid_utf8_is_replaced_not_fatal(
    docker_executor: DockerExecutor, spec_for: Any
) -> None:
    lines, code = await run(docker_executor, spec_for(r"printf 'bad \377\376 bytes\nnext\n'"))

    assert (lines, code) == (["bad \ufffd\ufffd bytes", "next"], 0)


async def test_crlf_is_stripped_and_a_final_partial_line_kept(
    docker_executor: DockerExecutor, spec_for: Any
) -> None:
    lines, _ = await run(docker_executor, spec_for(r"printf 'windows\r\nno newline'"))

    assert lines == ["windows", "no newline"]


async def test_lines_are_kept_when_wait_comes_first(
    docker_executor: DockerExecutor, spec_for: Any
) -> None:
    process = await docker_executor.start(spec_for("echo still-here"))

    code = await asyncio.wait_for(process.wait(), 30)

    assert (code, [line async for line in process.lines()]) == (0, ["still-here"])


async def test_container_is_removed_after_it_ends(
    docker_executor: DockerExecutor, spec_for: Any, docker_client: Any, step_labels: dict[str, str]
) -> None:
    await run(docker_executor, spec_for("true"))

    assert containers(docker_client, step_labels) == []


async def terminate_timed(process: DockerProcess, grace: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(process.terminate(grace_seconds=grace), grace + 15)
    return time.monotonic() - started


async def test_terminate_stops_the_step_and_removes_its_container(
    docker_executor: DockerExecutor, spec_for: Any, docker_client: Any, step_labels: dict[str, str]
) -> None:
    process = await docker_executor.start(spec_for("sleep 600"))

    elapsed = await terminate_timed(process, grace=2)

    assert elapsed < 2 + 5
    assert await process.wait() == -signal.SIGTERM
    assert containers(docker_client, step_labels) == []


async def test_terminate_kills_a_step_that_ignores_sigterm_after_the_grace(
    docker_executor: DockerExecutor, spec_for: Any
) -> None:
    process = await docker_executor.start(spec_for("trap '' TERM; echo ready; sleep 600"))
    assert await anext(aiter(process.lines())) == "ready"  # the trap is set

    elapsed = await terminate_timed(process, grace=1)

    assert 1 <= elapsed < 1 + 5
    assert await process.wait() == -signal.SIGKILL


async def test_missing_image_is_a_clear_error(
    docker_executor: DockerExecutor, spec_for: Any, docker_client: Any, step_labels: dict[str, str]
) -> None:
    with pytest.raises(
        NotFound, match=r"image 'local/no-such-image:1' is not on the Docker Engine"
    ):
        await docker_executor.start(spec_for("true", image="local/no-such-image:1"))

    assert containers(docker_client, step_labels) == []


async def test_image_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs StepSpec\.image"):
        await DockerExecutor().start(StepSpec(argv=["true"], workdir=tmp_path))
