"""The process runtime: releases run as supervised local processes, each on a loopback port.

Layout of ``state_dir``: ``builds/<app>/<release>/`` (artifacts; a venv is not relocatable, so
a build dir must stay where it was built), ``instances/<id>.json`` and ``<id>.log`` (one state
file and one output file per instance, so that a later Shipyard process finds what an earlier one
started), ``volumes/<name>/`` (named volumes, never deleted here) and ``cache/`` (pip and npm).

An app gets ``PORT`` (chosen here, see ``start``), ``HOST=127.0.0.1``, ``HOME`` = its build dir,
``SHIPYARD_VOLUME_<NAME>`` = the directory of each named volume (NAME upper-cased, other than
letters and digits as ``_``; the spec's mount path means nothing to a process), a minimal
inherited environment and the spec's env. ``memory_limit_mb`` is applied as RLIMIT_AS (address
space, not resident memory: node and the JVM reserve far more than they use, so give them a
generous limit); ``cpu_limit`` is not enforced by this runtime.

Instances are supervised (restarted with backoff) by the Shipyard process that started them;
output goes straight to the log file so that instances survive a restart of Shipyard, after which
they are found by ``running`` but no longer restarted if they crash (they then disappear from
``running``, and reconciliation starts new ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from shipyard.drivers.executors.shell import READ_LIMIT
from shipyard.drivers.runtime.base import (
    Artifact,
    BuildSpec,
    Instance,
    InstanceSpec,
    LogFn,
    Runtime,
)
from shipyard.drivers.runtime.process_build import (
    NO_START,
    BuildFailed,
    base_env,
    build_release,
    run_logged,
    safe_name,
)
from shipyard.errors import Invalid

__all__ = ["BuildFailed", "ProcessRuntime"]

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a process that ran this long before crashing starts its backoff over
SUPERVISE_POLL = 0.25
STOP_POLL = 0.05
KILL_WAIT = 5.0
OUTPUT_POLL = 0.2
LOG_CAP_BYTES = 64 * 1024 * 1024
LOG_CHECK_EVERY = 20  # supervise polls between two looks at the log file's size
TIMEOUT_EXIT_CODE = 124  # what timeout(1) returns: run_once's answer when it had to stop a command


@dataclass
class _Supervised:
    """One instance started by this runtime, and the process currently serving it."""

    state: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    preexec_fn: Callable[[], None] | None
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ProcessRuntime:
    """Runs releases as supervised local processes; cpu_limit is not enforced (see the module)."""

    name = "process"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._instances = self.state_dir / "instances"
        self._supervised: dict[str, _Supervised] = {}
        self._boot_id = _boot_id()

    async def build(self, spec: BuildSpec, log: LogFn) -> Artifact:
        """Copy the checkout to builds/<app>/<release>/ and build it there by profile."""
        return await build_release(self.state_dir, spec, log)

    async def run_once(self, spec: InstanceSpec, command: str, log: LogFn, timeout: float) -> int:
        """Run ``sh -c command`` in the build dir; 124 if it had to be stopped at the timeout."""
        build_dir = self._build_dir(spec.artifact)
        env = self._app_env(spec, build_dir)
        code, _ = await run_logged(
            ["/bin/sh", "-c", command],
            build_dir,
            env,
            log,
            timeout=timeout,
            preexec_fn=_memory_limit(spec.memory_limit_mb),
        )
        if code is None:
            await log(f"[shipyard] `{command}` timed out after {timeout:g}s and was stopped")
            return TIMEOUT_EXIT_CODE
        return 128 - code if code < 0 else code  # killed by signal N: 128 + N, like a shell

    async def start(self, spec: InstanceSpec, log: LogFn) -> Instance:
        """Start the artifact's start command on a free loopback port, supervised."""
        build_dir = self._build_dir(spec.artifact)
        command = spec.artifact.start_command
        if not command:
            raise Invalid(NO_START)
        instance_id = f"{safe_name('app', spec.app)}-{secrets.token_hex(6)}"
        # spec.port is the port an app is told to use inside a container, where every app can
        # have the same one. Processes share the machine's ports, so the runtime chooses a free
        # one and passes it as PORT; the instance's upstream says which.
        port = _free_port()
        env = self._app_env(spec, build_dir)
        env["PORT"] = str(port)
        env["HOST"] = "127.0.0.1"
        if spec.cpu_limit is not None:
            await log("[shipyard] note: cpu_limit is not enforced by the process runtime")
        await log(f"[shipyard] starting `{command}` on 127.0.0.1:{port} (instance {instance_id})")
        self._instances.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "id": instance_id,
            "app": spec.app,
            "release_id": spec.release_id,
            "upstream": f"127.0.0.1:{port}",
            "command": command,
            "build_dir": str(build_dir),
            "labels": dict(spec.labels),
            "started_at": time.time(),
            "restarts": 0,
        }
        sup = _Supervised(
            state, ["/bin/sh", "-c", command], env, _memory_limit(spec.memory_limit_mb)
        )
        # No await from here on: a cancel must not leave a process without its state file.
        self._spawn(sup)
        self._supervised[instance_id] = sup
        sup.task = asyncio.create_task(self._supervise(sup), name=f"supervise {instance_id}")
        return _instance(state)

    async def stop(self, instance: Instance, grace_seconds: float) -> None:
        """Stop supervising, SIGTERM the process group, SIGKILL it after the grace period."""
        if not _valid_id(instance.id):
            return
        sup = self._supervised.pop(instance.id, None)
        proc = None
        if sup is not None:
            sup.stopped = True
            if sup.task is not None:
                sup.task.cancel()
                await asyncio.gather(sup.task, return_exceptions=True)
            proc = sup.proc
        state = sup.state if sup is not None else self._read_state(instance.id)
        if state is not None and (
            (proc is not None and proc.poll() is None) or self._is_ours(state)
        ):
            await _end_group(int(state["pid"]), grace_seconds, proc)
        elif state is not None:
            _kill_leftovers(int(state["pid"]))
        self._forget(instance.id)

    async def running(self, app: str) -> list[Instance]:
        """Instances of the app whose process is alive (or being restarted by this runtime)."""
        found = []
        for path in sorted(self._instances.glob("*.json")) if self._instances.is_dir() else []:
            instance_id = path.stem
            sup = self._supervised.get(instance_id)
            if sup is not None and not sup.stopped:
                if sup.state["app"] == app:
                    found.append(sup.state)
                continue
            state = self._read_state(instance_id)
            if state is None:
                path.unlink(missing_ok=True)  # unreadable: nothing could ever use it
                continue
            if state.get("app") != app:
                continue
            if self._is_ours(state):
                found.append(state)
            else:
                _kill_leftovers(int(state["pid"]))
                self._forget(instance_id)
        found.sort(key=lambda s: float(s.get("started_at", 0)))
        return [_instance(s) for s in found]

    async def output(self, instance: Instance, tail: int | None = None) -> AsyncIterator[str]:
        """The instance's output lines from its log file (from its last ``tail`` lines when
        given), following until it is stopped."""
        if not _valid_id(instance.id):
            return
        log_path = self._instances / f"{instance.id}.log"
        state_path = self._instances / f"{instance.id}.json"
        try:
            handle = log_path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            if tail is not None:
                await asyncio.to_thread(_seek_last_lines, handle, tail)
            pending = b""
            while True:
                chunk = handle.read(65536)
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    if len(pending) > READ_LIMIT:  # a line without end: pass it on in pieces
                        lines.append(pending)
                        pending = b""
                    for line in lines:
                        yield _decode(line)
                    continue
                if not state_path.exists():
                    break
                with contextlib.suppress(OSError):
                    if os.fstat(handle.fileno()).st_size < handle.tell():
                        handle.seek(0)  # the supervisor truncated a log that grew too big
                await asyncio.sleep(OUTPUT_POLL)
            if pending:
                yield _decode(pending)

    async def remove_artifact(self, artifact: Artifact) -> None:
        """Delete a build dir; refs outside state_dir/builds are left alone."""
        await asyncio.to_thread(_remove_build, self.state_dir / "builds", Path(artifact.ref))

    async def aclose(self) -> None:
        """Stop supervising (on shutdown); the instances keep running for the next Shipyard."""
        for sup in list(self._supervised.values()):
            if sup.task is not None:
                sup.task.cancel()
                await asyncio.gather(sup.task, return_exceptions=True)
        self._supervised.clear()

    # Supervision

    async def _supervise(self, sup: _Supervised) -> None:
        loop = asyncio.get_running_loop()
        instance_id = sup.state["id"]
        delay = BACKOFF_FIRST
        try:
            while True:
                started = loop.time()
                code = await self._wait_exit(sup)
                if sup.stopped or not self._state_path(instance_id).exists():
                    return  # stopped, here or by another runtime on the same state dir
                if loop.time() - started >= STABLE_AFTER:
                    delay = BACKOFF_FIRST
                self._note(instance_id, f"exited with code {code}; restarting in {delay:g}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                if sup.stopped or not self._state_path(instance_id).exists():
                    return
                # What the crashed process left behind in its group may still hold the port.
                _kill_leftovers(int(sup.state["pid"]))
                sup.state["restarts"] = int(sup.state["restarts"]) + 1
                try:
                    self._spawn(sup)  # also records the new pid and restart count
                except (OSError, subprocess.SubprocessError) as exc:
                    self._note(instance_id, f"could not restart: {exc}")
        except Exception:
            logger.exception("supervising instance %s failed", instance_id)
        finally:
            if self._supervised.get(instance_id) is sup and not sup.stopped:
                self._supervised.pop(instance_id, None)

    async def _wait_exit(self, sup: _Supervised) -> int:
        assert sup.proc is not None
        polls = 0
        while (code := sup.proc.poll()) is None:
            polls += 1
            if polls % LOG_CHECK_EVERY == 0:
                self._cap_log(sup.state["id"])
            await asyncio.sleep(SUPERVISE_POLL)
        return code

    def _spawn(self, sup: _Supervised) -> None:
        instance_id = sup.state["id"]
        log_path = self._instances / f"{instance_id}.log"
        # The process writes to the file itself: a pipe to Shipyard would break on its restart.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            sup.proc = subprocess.Popen(  # noqa: S603 - the app's own start command, by design
                sup.argv,
                cwd=sup.state["build_dir"],
                env=sup.env,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=sup.preexec_fn,
            )
        finally:
            os.close(fd)
        sup.state["pid"] = sup.proc.pid
        sup.state["start_ticks"] = _start_ticks(sup.proc.pid)
        sup.state["boot_id"] = self._boot_id
        self._write_state(sup.state)

    def _cap_log(self, instance_id: str) -> None:
        log_path = self._instances / f"{instance_id}.log"
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > LOG_CAP_BYTES:
                # The process appends (O_APPEND), so it goes on writing at the new end.
                os.truncate(log_path, 0)
                self._note(instance_id, f"log truncated after {LOG_CAP_BYTES} bytes")

    def _note(self, instance_id: str, message: str) -> None:
        # No O_CREAT: a log removed by a stop elsewhere must not come back.
        with contextlib.suppress(OSError):
            fd = os.open(self._instances / f"{instance_id}.log", os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, f"[shipyard] {message}\n".encode())
            finally:
                os.close(fd)

    # State files

    def _state_path(self, instance_id: str) -> Path:
        return self._instances / f"{instance_id}.json"

    def _write_state(self, state: dict[str, Any]) -> None:
        path = self._state_path(state["id"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, path)  # readers never see half a file

    def _read_state(self, instance_id: str) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_path(instance_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not _real_pid(state.get("pid")):
            return None
        return state

    def _forget(self, instance_id: str) -> None:
        self._state_path(instance_id).unlink(missing_ok=True)
        (self._instances / f"{instance_id}.log").unlink(missing_ok=True)

    def _is_ours(self, state: dict[str, Any]) -> bool:
        """The recorded process is alive and is the one recorded (not a reused pid)."""
        pid = int(state["pid"])
        stat = _proc_stat(pid)
        return (
            stat is not None
            and stat[0] not in "ZX"
            and stat[1] == pid
            and stat[2] == state.get("start_ticks")
            and state.get("boot_id") == self._boot_id
        )

    # Environment

    def _build_dir(self, artifact: Artifact) -> Path:
        build_dir = Path(artifact.ref)
        if not build_dir.is_dir():
            raise Invalid(f"the build directory {build_dir} does not exist: build the release")
        return build_dir

    def _app_env(self, spec: InstanceSpec, build_dir: Path) -> dict[str, str]:
        env = base_env(build_dir, self.state_dir)
        env.update(spec.env)
        for volume in spec.volumes:
            directory = self.state_dir / "volumes" / safe_name("volume", volume)
            directory.mkdir(parents=True, exist_ok=True)
            key = "".join(c if c.isalnum() else "_" for c in volume.upper())
            env[f"SHIPYARD_VOLUME_{key}"] = str(directory)
        return env


def _seek_last_lines(handle: BinaryIO, count: int) -> None:
    """Position ``handle`` at the start of its last ``count`` complete lines (or at its end)."""
    end = handle.seek(0, os.SEEK_END)
    if count <= 0:
        return
    position, newlines, block = end, 0, 65536
    while position > 0:
        start = max(0, position - block)
        handle.seek(start)
        data = handle.read(position - start)
        if position == end and data.endswith(b"\n"):
            data = data[:-1]  # the last line's own end does not count
        index = len(data)
        while (index := data.rfind(b"\n", 0, index)) != -1:
            newlines += 1
            if newlines == count:
                handle.seek(start + index + 1)
                return
        position = start
    handle.seek(0)


def _remove_build(builds: Path, ref: Path) -> None:
    builds, path = builds.resolve(), ref.resolve()
    if path == builds or not path.is_relative_to(builds) or not path.is_dir():
        return
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the app's folder, once its last build is gone


def _instance(state: dict[str, Any]) -> Instance:
    return Instance(id=state["id"], release_id=state["release_id"], upstream=state["upstream"])


def _valid_id(instance_id: str) -> bool:
    try:
        safe_name("instance", instance_id)
    except Invalid:
        return False
    return True


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _memory_limit(megabytes: int | None) -> Callable[[], None] | None:
    if megabytes is None:
        return None
    limit = megabytes * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks since boot) from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces and parentheses.
    fields = raw[raw.rindex(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def _real_pid(pid: object) -> bool:
    # 0 and 1 are not ours to signal: killpg(0) would hit Shipyard's own group.
    return type(pid) is int and pid > 1


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    if not _real_pid(pgid):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat is not None and stat[1] == pgid and stat[0] not in "ZX":
                    return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    if not _real_pid(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_leftovers(pgid: int) -> None:
    """SIGKILL what is left of a group whose leader is gone (its pgid cannot be reused then)."""
    stat = _proc_stat(pgid)
    if (stat is None or stat[0] in "ZX") and _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)


async def _end_group(pgid: int, grace: float, proc: subprocess.Popen[bytes] | None) -> None:
    def gone() -> bool:
        if proc is not None and proc.poll() is None:
            return False  # reaped by us, or the leader would stay a zombie until Shipyard exits
        return not _group_alive(pgid)

    _signal_group(pgid, signal.SIGTERM)
    if not await _wait_until(gone, grace):
        _signal_group(pgid, signal.SIGKILL)
        await _wait_until(gone, KILL_WAIT)


async def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if condition():
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(STOP_POLL)


if TYPE_CHECKING:  # mypy checks here that the class satisfies the Protocol
    _conforms: type[Runtime] = ProcessRuntime
