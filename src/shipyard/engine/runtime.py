"""Wire the engine: a worker with a handler per job kind.

Handlers are built on their first job: an idle server that has run no deployment or pipeline
does not carry the runners, runtimes, git and build-detection code in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import TYPE_CHECKING

from shipyard.apps.service import TEARDOWN_JOB
from shipyard.deployments.lifecycle import LIFECYCLE_JOB
from shipyard.deployments.service import DEPLOYMENT_JOB
from shipyard.engine.jobs import ClaimedJob
from shipyard.engine.proxy_sync import PROXY_SYNC_JOB
from shipyard.engine.recovery import RECOVERY_JOB
from shipyard.engine.worker import Worker
from shipyard.runs.service import EXECUTION_JOB

if TYPE_CHECKING:
    from shipyard.context import AppContext
    from shipyard.drivers.executors.base import StepExecutor
    from shipyard.drivers.runtime.base import Runtime

Handler = Callable[[ClaimedJob], Awaitable[None]]


def executors() -> dict[str, StepExecutor]:
    from shipyard.drivers.executors.docker import DockerExecutor
    from shipyard.drivers.executors.shell import ShellExecutor

    return {"shell": ShellExecutor(), "docker": DockerExecutor()}


def runtimes(ctx: AppContext) -> dict[str, Runtime]:
    from shipyard.drivers.runtime.docker import DockerRuntime
    from shipyard.drivers.runtime.process import ProcessRuntime

    return {
        "docker": DockerRuntime(base_image=ctx.settings.base_image),
        "process": ProcessRuntime(ctx.settings.resolved_data_dir / "process"),
    }


def _lazy(factory: Callable[[], Handler]) -> Handler:
    made = cache(factory)

    async def handle(job: ClaimedJob) -> None:
        await made()(job)

    return handle


def build_worker(ctx: AppContext) -> Worker:
    settings = ctx.settings
    worker = Worker(ctx.database, concurrency=settings.worker_concurrency)
    shared_runtimes = ctx.runtimes

    def execution_handler() -> Handler:
        from shipyard.engine.pipeline_runner import ExecutionRunner, RunnerConfig

        config = RunnerConfig(
            data_dir=settings.resolved_data_dir,
            stage_concurrency=settings.ci_stage_concurrency,
            cancel_grace_seconds=settings.ci_cancel_grace_seconds,
            deadline_seconds=settings.ci_deadline_seconds,
        )
        return ExecutionRunner(ctx.database, ctx.bus, ctx.keyring, executors(), config).handle

    def deployment_handler() -> Handler:
        from shipyard.engine.deploy_runner import DeployRunner

        return DeployRunner(
            ctx.database, ctx.bus, ctx.keyring, shared_runtimes(), ctx.proxy, settings
        ).handle

    def teardown_handler() -> Handler:
        from shipyard.engine.teardown import Teardown

        return Teardown(
            ctx.database,
            shared_runtimes(),
            ctx.proxy,
            settings.stop_grace_seconds,
            settings.resolved_data_dir,
        ).handle

    def lifecycle_handler() -> Handler:
        from shipyard.engine.app_lifecycle import LifecycleRunner

        return LifecycleRunner(
            ctx.database, ctx.bus, ctx.keyring, shared_runtimes(), ctx.proxy, settings
        ).handle

    def recovery_handler() -> Handler:
        from shipyard.engine.recovery import Recovery

        return Recovery(ctx.database, shared_runtimes()).handle

    async def proxy_sync(job: ClaimedJob) -> None:
        async with ctx.database.reading() as session:
            await ctx.proxy.apply(session)

    worker.register(EXECUTION_JOB, _lazy(execution_handler))
    worker.register(DEPLOYMENT_JOB, _lazy(deployment_handler))
    worker.register(TEARDOWN_JOB, _lazy(teardown_handler))
    worker.register(LIFECYCLE_JOB, _lazy(lifecycle_handler))
    worker.register(RECOVERY_JOB, _lazy(recovery_handler))
    worker.register(PROXY_SYNC_JOB, proxy_sync)
    return worker
