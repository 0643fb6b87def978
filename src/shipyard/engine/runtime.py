"""Wire the engine: a worker with a handler per job kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.apps.service import TEARDOWN_JOB
from shipyard.deployments.service import DEPLOYMENT_JOB
from shipyard.drivers.executors.base import StepExecutor
from shipyard.drivers.executors.shell import ShellExecutor
from shipyard.drivers.runtime.base import Runtime
from shipyard.engine.deploy_runner import DeployRunner, Teardown
from shipyard.engine.pipeline_runner import ExecutionRunner, RunnerConfig
from shipyard.engine.worker import Worker
from shipyard.runs.service import EXECUTION_JOB

if TYPE_CHECKING:
    from shipyard.context import AppContext


def executors() -> dict[str, StepExecutor]:
    from shipyard.drivers.executors.docker import DockerExecutor

    return {"shell": ShellExecutor(), "docker": DockerExecutor()}


def runtimes(ctx: AppContext) -> dict[str, Runtime]:
    from shipyard.drivers.runtime.docker import DockerRuntime
    from shipyard.drivers.runtime.process import ProcessRuntime

    return {
        "docker": DockerRuntime(base_image=ctx.settings.base_image),
        "process": ProcessRuntime(ctx.settings.resolved_data_dir / "process"),
    }


def build_worker(ctx: AppContext) -> Worker:
    settings = ctx.settings
    worker = Worker(ctx.database, concurrency=settings.worker_concurrency)
    runner = ExecutionRunner(
        ctx.database,
        ctx.bus,
        ctx.keyring,
        executors(),
        RunnerConfig(
            data_dir=settings.resolved_data_dir,
            stage_concurrency=settings.ci_stage_concurrency,
            cancel_grace_seconds=settings.ci_cancel_grace_seconds,
            deadline_seconds=settings.ci_deadline_seconds,
        ),
    )
    worker.register(EXECUTION_JOB, runner.handle)
    available = runtimes(ctx)
    deployer = DeployRunner(ctx.database, ctx.bus, ctx.keyring, available, ctx.proxy, settings)
    worker.register(DEPLOYMENT_JOB, deployer.handle)
    teardown = Teardown(ctx.database, available, ctx.proxy, settings.stop_grace_seconds)
    worker.register(TEARDOWN_JOB, teardown.handle)
    return worker
