"""Runs one pipeline execution: checkout, then the stage graph (ready stages in parallel up to a
limit, steps in order), each step in its own process group or container, with timeouts, cancel
and live events. Every status change goes through engine.states and is published after commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.clock import now_ms
from shipyard.db.engine import Database
from shipyard.drivers import git
from shipyard.drivers.executors.base import StepExecutor, StepSpec
from shipyard.engine.jobs import ClaimedJob
from shipyard.engine.run_end import end_run
from shipyard.engine.states import (
    CANCELLED,
    FAILED,
    FINISHED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    move_run,
    move_step,
)
from shipyard.events.bus import EventBus, run_topic
from shipyard.logs.writer import LogWriter
from shipyard.models import Pipeline, Run, RunStep, Workspace
from shipyard.runs import events as run_events
from shipyard.runs import service as runs_service
from shipyard.secrets.keyring import Keyring
from shipyard.secrets.redaction import Redactor
from shipyard.workspaces import service as workspaces_service

log = logging.getLogger("shipyard.engine")

DEFAULT_STEP_TIMEOUT_SECONDS = 3600
CANCEL_POLL_SECONDS = 1.0


@dataclass
class RunnerConfig:
    data_dir: Path
    stage_concurrency: int = 4
    cancel_grace_seconds: float = 5.0
    deadline_seconds: int = 6 * 3600


@dataclass
class _Execution:
    run_id: str
    pipeline: Pipeline
    workspace: Workspace
    variables: dict[str, str]
    secrets: dict[str, str]
    steps: dict[tuple[str, str], RunStep]
    writer: LogWriter
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None


class ExecutionRunner:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        keyring: Keyring,
        executors: dict[str, StepExecutor],
        config: RunnerConfig,
    ) -> None:
        self.database, self.bus, self.keyring = database, bus, keyring
        self.executors, self.config = executors, config

    # --- transitions (stored, then published) ----------------------------------------------

    async def _move_step(self, ex: _Execution, step: RunStep, target: str, **kw: Any) -> None:
        async with self.database.transaction() as session:
            row = await session.get(RunStep, step.id)
            assert row is not None
            move_step(row, target, **kw)
            step.status, step.exit_code = row.status, row.exit_code
            event = await run_events.record(session, ex.run_id, target, step.stage, step.name)
        run_events.publish(self.bus, ex.run_id, [event])

    async def _finish_run(self, run_id: str, target: str, error: str | None) -> None:
        await end_run(self.database, self.bus, run_id, target, error, kind="execution_update")

    # --- entry point ----------------------------------------------------------------------

    async def handle(self, job: ClaimedJob) -> None:
        run_id = job.payload["run_id"]
        async with self.database.transaction() as session:
            run = await session.get(Run, run_id)
            if run is None or run.status in FINISHED:
                return
            interrupted = run.status == RUNNING
            started = None
            if not interrupted:
                move_run(run, RUNNING)
                run.deadline_at_ms = now_ms() + self.config.deadline_seconds * 1000
                started = await run_events.record(session, run_id, RUNNING)
            pipeline = await session.get(Pipeline, run.pipeline_id)
            workspace = await session.get(Workspace, pipeline.workspace_id) if pipeline else None
            secrets = (
                await workspaces_service.decrypted_secrets(session, self.keyring, workspace.id)
                if workspace
                else {}
            )
            steps = {
                (s.stage or "", s.name): s for s in await runs_service.steps_of(session, run_id)
            }
            variables = dict(run.variables or {})
            branch, commit = run.branch, run.commit_sha
        if interrupted:
            # The previous attempt's worker died mid-run; its processes died with it.
            await self._finish_run(
                run_id, FAILED, "interrupted: Shipyard stopped while this execution ran"
            )
            return
        if pipeline is None or workspace is None:
            await self._finish_run(run_id, FAILED, "the pipeline no longer exists")
            return
        run_events.publish(self.bus, run_id, [started] if started else [])
        writer = LogWriter(self.database, self.bus, run_id, Redactor(secrets.values()))
        ex = _Execution(run_id, pipeline, workspace, variables, secrets, steps, writer)
        watcher = asyncio.create_task(self._watch_cancel(ex))
        workdir = self.config.data_dir / "work" / run_id
        try:
            sha = await self._checkout(ex, branch or workspace.branch, commit, workdir)
            variables.setdefault("SHIPYARD_COMMIT_SHA", sha)
            await self._record_commit(run_id, sha)
            outcome, error = await self._run_graph(ex, workdir)
        except git.GitError as exc:
            outcome, error = FAILED, f"checkout failed: {exc.message}"
            await writer.write(error, level="ERROR")
        except asyncio.CancelledError:
            await self._finish_run(
                run_id, FAILED, "interrupted: Shipyard stopped while this execution ran"
            )
            raise
        finally:
            watcher.cancel()
            await writer.close()
            shutil.rmtree(workdir, ignore_errors=True)
        await self._finish_run(run_id, outcome, error)

    async def _record_commit(self, run_id: str, sha: str) -> None:
        """The commit a branch resolved to, so the execution shows what it ran."""
        async with self.database.transaction() as session:
            run = await session.get(Run, run_id)
            if run is not None:
                run.commit_sha = sha

    async def _watch_cancel(self, ex: _Execution) -> None:
        """Cancel arrives on the bus (this process) or in the database (another replica)."""
        deadline = now_ms() + self.config.deadline_seconds * 1000
        async with self.bus.subscribe(run_topic(ex.run_id)) as queue:
            while not ex.cancel.is_set():
                with contextlib.suppress(TimeoutError):
                    event = await asyncio.wait_for(queue.get(), CANCEL_POLL_SECONDS)
                    if event.get("type") == "cancel":
                        ex.reason = "cancelled"
                        ex.cancel.set()
                        return
                async with self.database.reading() as session:
                    if await runs_service.cancel_requested(session, ex.run_id):
                        ex.reason = "cancelled"
                        ex.cancel.set()
                if now_ms() > deadline:
                    ex.reason = f"deadline of {self.config.deadline_seconds} s exceeded"
                    ex.cancel.set()

    async def _checkout(
        self, ex: _Execution, branch: str, commit: str | None, workdir: Path
    ) -> str:
        cache = self.config.data_dir / "git" / ex.workspace.id
        await ex.writer.write(f"checkout {ex.workspace.repository_url} ({commit or branch})")
        mirror = await git.mirror(ex.workspace.repository_url, cache)
        sha = await git.resolve_cached(mirror, commit or branch)
        await git.checkout(mirror, sha, workdir)
        await ex.writer.write(f"checked out {sha}")
        return sha

    # --- the stage graph ------------------------------------------------------------------

    async def _run_graph(self, ex: _Execution, workdir: Path) -> tuple[str, str | None]:
        stages = {s["name"]: s for s in ex.pipeline.stages}
        result: dict[str, str] = {}
        pending = list(stages)
        running: dict[str, asyncio.Task[str]] = {}
        while pending or running:
            for name in list(pending):
                deps = stages[name]["depends_on"]
                if (
                    any(result.get(d) in (FAILED, SKIPPED, CANCELLED) for d in deps)
                    or ex.cancel.is_set()
                ):
                    pending.remove(name)
                    result[name] = CANCELLED if ex.cancel.is_set() else SKIPPED
                    for step in stages[name]["steps"]:
                        row = ex.steps[(name, step["name"])]
                        await self._move_step(ex, row, result[name])
                elif (
                    all(result.get(d) == SUCCEEDED for d in deps)
                    and len(running) < self.config.stage_concurrency
                ):
                    pending.remove(name)
                    running[name] = asyncio.create_task(self._run_stage(ex, stages[name], workdir))
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for name, task in list(running.items()):
                if task in done:
                    result[name] = task.result()
                    del running[name]
        if ex.cancel.is_set():
            return (CANCELLED if ex.reason == "cancelled" else FAILED), ex.reason
        failed = [n for n, r in result.items() if r == FAILED]
        if failed:
            return FAILED, f"stage {failed[0]} failed"
        return SUCCEEDED, None

    async def _run_stage(self, ex: _Execution, stage: dict[str, Any], workdir: Path) -> str:
        for index, step in enumerate(stage["steps"]):
            row = ex.steps[(stage["name"], step["name"])]
            outcome = (
                CANCELLED
                if ex.cancel.is_set()
                else await self._run_step(ex, stage, step, row, workdir)
            )
            if outcome != SUCCEEDED:
                for later in stage["steps"][index + 1 :]:
                    await self._move_step(
                        ex,
                        ex.steps[(stage["name"], later["name"])],
                        SKIPPED if outcome == FAILED else CANCELLED,
                    )
                return outcome
        return SUCCEEDED

    def _env(self, ex: _Execution, stage: dict[str, Any], step: dict[str, Any]) -> dict[str, str]:
        # Precedence, lowest first: secrets, pipeline variables, execution variables, step env.
        env = dict(ex.secrets)
        env.update(ex.pipeline.variables)
        env.update(ex.variables)
        env.update(step.get("environment") or {})
        env.update(
            CI="true",
            SHIPYARD_EXECUTION_ID=ex.run_id,
            SHIPYARD_PIPELINE=ex.pipeline.name,
            SHIPYARD_STAGE=stage["name"],
            SHIPYARD_STEP=step["name"],
        )
        return env

    async def _run_step(
        self,
        ex: _Execution,
        stage: dict[str, Any],
        step: dict[str, Any],
        row: RunStep,
        workdir: Path,
    ) -> str:
        await self._move_step(ex, row, RUNNING)
        command = step["command"] + (" " + shlex.join(step["args"]) if step.get("args") else "")
        executor = self.executors[step.get("executor", "shell")]
        spec = StepSpec(
            argv=["/bin/sh", "-c", command],
            workdir=workdir,
            env=self._env(ex, stage, step),
            image=step.get("image"),
            labels={"shipyard.run": ex.run_id, "shipyard.step": row.id},
        )
        await ex.writer.write(f"$ {command}", step_id=row.id)
        try:
            proc = await executor.start(spec)
        except Exception as exc:  # the executor could not start it: a step failure, not a crash
            await ex.writer.write(f"could not start the step: {exc}", step_id=row.id, level="ERROR")
            await self._move_step(ex, row, FAILED, message=f"could not start: {exc}")
            return FAILED

        async def pump() -> None:
            async for line in proc.lines():
                await ex.writer.write(line, step_id=row.id)

        reader = asyncio.create_task(pump())
        waiter = asyncio.create_task(proc.wait())
        cancelled = asyncio.create_task(ex.cancel.wait())
        timeout = step.get("timeout_seconds", DEFAULT_STEP_TIMEOUT_SECONDS)
        stopped: str | None = None
        try:
            done, _ = await asyncio.wait(
                {waiter, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                stopped = "timeout" if not done else "cancel"
        finally:
            cancelled.cancel()
            if not waiter.done():
                await proc.terminate(self.config.cancel_grace_seconds)
            code = await waiter
            await reader
        return await self._record_exit(ex, row, code, stopped, timeout)

    async def _record_exit(
        self, ex: _Execution, row: RunStep, code: int, stopped: str | None, limit_s: int
    ) -> str:
        if stopped == "cancel" and ex.reason == "cancelled":
            await ex.writer.write("step cancelled", step_id=row.id, level="WARN")
            await self._move_step(ex, row, CANCELLED, exit_code=code, message="cancelled")
            return CANCELLED
        if stopped is not None:
            message = (
                f"timed out after {limit_s} s" if stopped == "timeout" else (ex.reason or "stopped")
            )
            await ex.writer.write(message, step_id=row.id, level="ERROR")
            await self._move_step(ex, row, FAILED, exit_code=code, message=message)
            return FAILED
        if code == 0:
            await self._move_step(ex, row, SUCCEEDED, exit_code=0)
            return SUCCEEDED
        message = f"exited with code {code}"
        await ex.writer.write(message, step_id=row.id, level="ERROR")
        await self._move_step(ex, row, FAILED, exit_code=code, message=message)
        return FAILED
