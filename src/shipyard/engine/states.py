"""The one place Run and Step statuses change. Every transition is checked against its machine."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.clock import now_ms
from shipyard.models import Run, RunStep

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, SKIPPED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "skipped",
)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, SKIPPED})
# What an app's live release is doing (App.state): stopped by a user, or running.
APP_RUNNING, APP_STOPPED = "running", "stopped"


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class Machine:
    """Allowed moves between statuses for one kind of thing."""

    name: str
    moves: dict[str, frozenset[str]]

    def check(self, current: str, target: str) -> None:
        if target not in self.moves.get(current, frozenset()):
            raise IllegalTransition(f"{self.name}: {current} -> {target} is not allowed")


# A Run of either kind: deployments and executions share the lifecycle; their steps differ.
RUN_MACHINES = {
    kind: Machine(
        f"{kind} run",
        {
            QUEUED: frozenset({RUNNING, CANCELLED, FAILED}),
            RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED}),
        },
    )
    for kind in ("deployment", "execution")
}
STEP_MACHINE = Machine(
    "step",
    {
        QUEUED: frozenset({RUNNING, SKIPPED, CANCELLED, FAILED}),
        RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED}),
    },
)


def move_run(run: Run, target: str, *, error: str | None = None) -> None:
    RUN_MACHINES[run.kind].check(run.status, target)
    now = now_ms()
    run.status = target
    run.updated_at_ms = now
    if target == RUNNING:
        run.started_at_ms = now
    if target in FINISHED:
        run.finished_at_ms = now
        if run.started_at_ms is None and target != CANCELLED:
            run.started_at_ms = now
    if error is not None:
        run.error = error


def move_step(
    step: RunStep, target: str, *, exit_code: int | None = None, message: str | None = None
) -> None:
    STEP_MACHINE.check(step.status, target)
    now = now_ms()
    step.status = target
    if target == RUNNING:
        step.started_at_ms = now
    if target in FINISHED:
        step.finished_at_ms = now
    if exit_code is not None:
        step.exit_code = exit_code
    if message is not None:
        step.message = message
