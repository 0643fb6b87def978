"""ProcessRuntime.output(tail=N): the last N lines printed so far, then what follows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shipyard.drivers.runtime.base import Artifact, InstanceSpec
from shipyard.drivers.runtime.process import ProcessRuntime

PRINTS = "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo later; sleep 60"


async def _nothing(line: str) -> None:
    return None


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    rt = ProcessRuntime(tmp_path / "state")
    yield rt
    await rt.aclose()


async def lines(runtime: ProcessRuntime, tmp_path: Path, tail: int | None, count: int) -> list[str]:
    build = tmp_path / "build"
    build.mkdir()
    spec = InstanceSpec("demo", "r1", Artifact(str(build), PRINTS), 8000)
    instance = await runtime.start(spec, _nothing)
    try:
        await asyncio.sleep(0.5)  # the first five lines are printed by now
        seen: list[str] = []
        stream = runtime.output(instance, tail=tail)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async with asyncio.timeout(10):
                async for line in stream:
                    seen.append(line)
                    if len(seen) == count:
                        return seen
        return seen
    finally:
        await runtime.stop(instance, 1)


async def test_tail_starts_with_the_last_lines_then_follows(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    assert await lines(runtime, tmp_path, 2, 3) == ["line4", "line5", "later"]


async def test_tail_zero_gives_only_what_follows(runtime: ProcessRuntime, tmp_path: Path) -> None:
    assert await lines(runtime, tmp_path, 0, 1) == ["later"]


async def test_without_tail_everything_comes(runtime: ProcessRuntime, tmp_path: Path) -> None:
    assert await lines(runtime, tmp_path, None, 2) == ["line1", "line2"]
