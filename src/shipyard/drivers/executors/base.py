"""The Protocol every step executor implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class StepSpec:
    """What to run: ``argv`` in ``workdir`` with ``env``; ``image`` only matters to containers."""

    argv: list[str]
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


class StepProcess(Protocol):
    """One running step."""

    def lines(self) -> AsyncIterator[str]:
        """Output lines (stdout and stderr merged, decoded lossily as UTF-8, no newline)."""
        ...

    async def wait(self) -> int:
        """The exit code, once the step has ended (negative signal number if killed)."""
        ...

    async def terminate(self, grace_seconds: float) -> None:
        """SIGTERM (or stop), then SIGKILL after the grace period; returns when it is gone."""
        ...


class StepExecutor(Protocol):
    async def start(self, spec: StepSpec) -> StepProcess: ...
