"""Run a step as a local process in its own process group, so cancel reaches its children too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

from shipyard.drivers.executors.base import StepSpec

# Steps see these from the server's environment and nothing else: the server's own variables
# (database URL, SMTP password, ...) are not the step's business.
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
READ_LIMIT = 1024 * 1024  # a single line longer than this is split


class ShellProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def lines(self) -> AsyncIterator[str]:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over READ_LIMIT: take what is buffered
                raw = await stream.read(READ_LIMIT)
            if not raw:
                return
            yield raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r")

    async def wait(self) -> int:
        return await self.proc.wait()

    async def terminate(self, grace_seconds: float) -> None:
        if self.proc.returncode is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace_seconds)
        except TimeoutError:
            self._signal_group(signal.SIGKILL)
            await self.proc.wait()
        # Children that ignored SIGTERM and outlived the leader still belong to the group.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


class ShellExecutor:
    """Runs ``spec.argv`` directly (no shell is added here) in ``spec.workdir``."""

    async def start(self, spec: StepSpec) -> ShellProcess:
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = str(spec.workdir)
        env.update(spec.env)
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            cwd=spec.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=READ_LIMIT,
        )
        return ShellProcess(proc)
