"""Builds for the process runtime: a copy of the checkout with its venv or node_modules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.drivers.executors.shell import INHERITED, READ_LIMIT, ShellProcess
from shipyard.drivers.manifest import read_tree_file
from shipyard.drivers.runtime.base import Artifact, BuildSpec, LogFn
from shipyard.errors import Invalid, ShipyardError

CONTAINER_PROFILES = ("dockerfile", "compose", "image")
BUILT_IN_PROFILES = ("python", "node", "static", "procfile")
# Installers may need the machine's package index and proxy settings; apps do not get them.
BUILD_INHERITED = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "npm_config_registry",
    "SSL_CERT_FILE",
)
MAX_FILE_BYTES = 1024 * 1024
TERMINATE_GRACE = 5.0
LAST_LINE_CHARS = 300
NO_START = "no start command: add a Procfile web line or shipyard.yaml start"
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class BuildFailed(ShipyardError):
    """A build step failed; the message names the command, its exit code and its last line."""

    code: str = "build_failed"
    status: int = 422


def safe_name(kind: str, value: str) -> str:
    """``value`` if it can be used as one path component; Invalid otherwise."""
    if not _SAFE_NAME_RE.match(value) or ".." in value:
        raise Invalid(f"{kind} {value!r} cannot be used as a directory name")
    return value


def base_env(
    build_dir: Path, state_dir: Path, inherited: Sequence[str] = INHERITED
) -> dict[str, str]:
    """The minimal environment of anything run in a build dir, its own executables first."""
    env = {k: os.environ[k] for k in inherited if k in os.environ}
    own_bins = [build_dir / ".venv" / "bin", build_dir / "node_modules" / ".bin"]
    path = env.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
    env["PATH"] = os.pathsep.join([*(str(d) for d in own_bins if d.is_dir()), path])
    env["HOME"] = str(build_dir)
    if (build_dir / ".venv").is_dir():
        env["VIRTUAL_ENV"] = str(build_dir / ".venv")
    # Output goes to a log file: without this Python would hold it back until a buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    # Caches are shared by builds and kept out of the artifacts; npm must not phone home.
    env["PIP_CACHE_DIR"] = str(state_dir / "cache" / "pip")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["npm_config_cache"] = str(state_dir / "cache" / "npm")
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    return env


async def run_logged(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log: LogFn,
    *,
    timeout: float | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[int | None, str]:
    """Run argv in its own process group, logging each line; (exit code or None, last line)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=READ_LIMIT,
        preexec_fn=preexec_fn,
    )
    shell = ShellProcess(proc)
    last = ""

    async def pump() -> int:
        nonlocal last
        async for line in shell.lines():
            if line.strip():
                last = line.strip()
            await log(line)
        return await shell.wait()

    try:
        return await asyncio.wait_for(pump(), timeout), last
    except TimeoutError:
        return None, last
    finally:
        # On a timeout or a cancel the group is still running: it must not outlive the caller.
        await shell.terminate(TERMINATE_GRACE)


async def build_release(state_dir: Path, spec: BuildSpec, log: LogFn) -> Artifact:
    """Copy the checkout to builds/<app>/<release>/, install its dependencies, run its build."""
    if spec.profile in CONTAINER_PROFILES:
        raise Invalid(f"the process runtime cannot run {spec.profile} apps: use the docker runtime")
    if spec.profile not in BUILT_IN_PROFILES and not spec.build_command:
        raise Invalid(
            f"the process runtime has no built-in build for {spec.profile} apps: set build and "
            "start in shipyard.yaml, or use the docker runtime"
        )
    source = Path(spec.source_dir)
    _check_source(source, spec.profile)
    dest = state_dir / "builds" / safe_name("app", spec.app) / safe_name("release", spec.release_id)
    await log(f"copying the source to {dest}")
    await asyncio.to_thread(_copy_tree, source, dest)
    try:
        for argv in _install_steps(spec.profile, dest, state_dir):
            await _step(argv, dest, _build_env(dest, state_dir, spec), log)
        if spec.build_command:
            await _step(
                ["/bin/sh", "-c", spec.build_command], dest, _build_env(dest, state_dir, spec), log
            )
        start = resolve_start_command(dest, spec)
    except BaseException:
        # A failed build is never deployed, so nothing else would ever delete it.
        shutil.rmtree(dest, ignore_errors=True)
        raise
    await log(f"built {dest}; start command: {start}")
    return Artifact(ref=str(dest), start_command=start)


def resolve_start_command(tree: Path, spec: BuildSpec) -> str:
    """The manifest's start, else the Procfile web line, else what the profile suggests."""
    if spec.start_command:
        return spec.start_command
    procfile = read_tree_file(tree, "Procfile", MAX_FILE_BYTES) or ""
    for line in procfile.splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == "web" and command.strip():
            return command.strip()
    if spec.profile == "python":
        for name in ("app.py", "main.py"):
            if (tree / name).is_file():
                return f"python3 {name}"
    if spec.profile == "node":
        scripts = _table(_package_json(tree), "scripts")
        if isinstance(scripts.get("start"), str):
            return "npm start"
    if spec.profile == "static":
        # Loopback only: the proxy is the way in, like for every other process.
        return 'python3 -m http.server --bind 127.0.0.1 "$PORT"'
    raise Invalid(NO_START)


def _build_env(dest: Path, state_dir: Path, spec: BuildSpec) -> dict[str, str]:
    env = base_env(dest, state_dir, (*INHERITED, *BUILD_INHERITED))
    if spec.no_cache:  # a forced rebuild also fetches the dependencies again
        env["PIP_NO_CACHE_DIR"] = "1"
        env["npm_config_prefer_online"] = "true"
    env.update(spec.env)
    return env


async def _step(argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: LogFn) -> None:
    shown = argv[2] if argv[:2] == ["/bin/sh", "-c"] else " ".join(argv)
    await log(f"$ {shown}")
    code, last = await run_logged(argv, cwd, env, log)
    if code != 0:
        tail = last[:LAST_LINE_CHARS] or "(no output)"
        raise BuildFailed(f"`{shown}` failed with exit code {code}: {tail}")


def _install_steps(profile: str, dest: Path, state_dir: Path) -> list[list[str]]:
    if profile == "python":
        steps = [["python3", "-m", "venv", ".venv"]]
        if (dest / "requirements.txt").is_file():
            # Through the venv's python: a long build path can exceed the shebang limit.
            steps.append([".venv/bin/python", "-m", "pip", "install", "-r", "requirements.txt"])
        return steps
    if profile == "node" and (dest / "package.json").is_file():
        path = base_env(dest, state_dir)["PATH"]
        if (dest / "package-lock.json").is_file():
            return [["npm", "ci"]]
        if (dest / "pnpm-lock.yaml").is_file() and shutil.which("pnpm", path=path):
            return [["pnpm", "install", "--frozen-lockfile"]]
        if (dest / "yarn.lock").is_file() and shutil.which("yarn", path=path):
            return [["yarn", "install", "--frozen-lockfile"]]
        return [["npm", "install"]]
    return []


def _check_source(source: Path, profile: str) -> None:
    if not source.is_dir():
        raise Invalid(f"the source directory {source} does not exist")
    if profile != "python" or (source / "requirements.txt").is_file():
        return
    try:
        pyproject = tomllib.loads(read_tree_file(source, "pyproject.toml", MAX_FILE_BYTES) or "")
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"pyproject.toml is not valid TOML: {exc}") from None
    project = _table(pyproject, "project")
    poetry_deps = set(_table(_table(_table(pyproject, "tool"), "poetry"), "dependencies"))
    poetry_deps.discard("python")
    locked = (source / "uv.lock").is_file() or (source / "poetry.lock").is_file()
    if locked or project.get("dependencies") or poetry_deps:
        raise Invalid(
            "the process runtime cannot install dependencies from pyproject.toml (uv/poetry) "
            "yet: add a requirements.txt (uv export / poetry export) or use the docker runtime"
        )


def _table(data: Mapping[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _package_json(tree: Path) -> dict[str, object]:
    try:
        data = json.loads(read_tree_file(tree, "package.json", MAX_FILE_BYTES) or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _copy_tree(source: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)  # a rebuild of the same release starts from a clean copy
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
