"""The process runtime with real builds and real processes (no network: apps without deps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from shipyard.drivers.runtime.base import Artifact, BuildSpec, Instance, InstanceSpec
from shipyard.drivers.runtime.process import BuildFailed, ProcessRuntime
from shipyard.errors import Invalid

APP_PY = """\
import http.server, json, os

VERSION = "1.2.3"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            os._exit(3)
        if self.path == "/env":
            body = json.dumps(dict(os.environ)).encode()
        else:
            body = f"hello from version {VERSION}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print(f"app version {VERSION} on port {os.environ['PORT']}")
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

# A server that answers with a fixed text, for the Procfile test.
SERVER_PY = """\
import http.server, os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"from the procfile")

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

SERVER_JS = """\
const http = require("http");
http.createServer((req, res) => res.end(`node says hi to ${process.env.GREETING}`))
  .listen(Number(process.env.PORT), process.env.HOST);
console.log("node app started");
"""


class Lines:
    """A LogFn that keeps what it was given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def instance_spec(artifact: Artifact, **changes: object) -> InstanceSpec:
    spec = InstanceSpec(app="demo", release_id="r1", artifact=artifact, port=8000)
    return replace(spec, **changes)  # type: ignore[arg-type]


async def get(upstream: str, path: str = "/", within: float = 10.0) -> httpx.Response:
    """GET from the instance, retrying while it is (re)starting."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while True:
            try:
                return await client.get(f"http://{upstream}{path}")
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in "ZX"


async def first_line_with(runtime: ProcessRuntime, instance: Instance, text: str) -> str:
    async def scan() -> str:
        stream = runtime.output(instance)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for line in stream:
                if text in line:
                    return line
        raise AssertionError(f"output ended without {text!r}")

    return await asyncio.wait_for(scan(), 10)


@pytest.fixture(scope="module")
def python_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Artifact, Lines]]:
    """One python build (a venv takes seconds) shared by the tests that only run it."""
    root = tmp_path_factory.mktemp("python")
    source = write_tree(root / "src", {"app.py": APP_PY, "requirements.txt": "# no dependencies\n"})
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    spec = BuildSpec(
        app="demo",
        release_id="r1",
        source_dir=source,
        profile="python",
        build_command='python -c "import sys; print(sys.prefix)" > prefix.txt; echo built it',
    )
    log = Lines()
    artifact = asyncio.run(ProcessRuntime(root / "state").build(spec, log))
    yield artifact, log


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A runtime on a fresh state dir; whatever a failed test left running is stopped."""
    rt = ProcessRuntime(tmp_path / "state")
    try:
        yield rt
    finally:
        for state_file in (tmp_path / "state" / "instances").glob("*.json"):
            state = json.loads(state_file.read_text())
            with contextlib.suppress(Exception):
                await rt.stop(Instance(state["id"], state["release_id"], state["upstream"]), 1)
        await rt.aclose()


async def test_python_app_builds_and_serves(
    python_build: tuple[Artifact, Lines], runtime: ProcessRuntime
) -> None:
    artifact, build_log = python_build
    build_dir = Path(artifact.ref)
    assert build_dir.parts[-3:] == ("builds", "demo", "r1")
    assert (build_dir / ".venv" / "bin" / "python").exists()
    assert not (build_dir / ".git").exists()
    assert artifact.start_command == "python3 app.py"
    # The build command ran in the build dir with the venv first on PATH; its output was logged.
    assert (build_dir / "prefix.txt").read_text().strip() == str(build_dir / ".venv")
    assert "$ python3 -m venv .venv" in build_log.lines
    assert "built it" in build_log.lines

    log = Lines()
    instance = await runtime.start(instance_spec(artifact), log)
    try:
        assert instance.release_id == "r1"
        assert instance.upstream.startswith("127.0.0.1:")
        response = await get(instance.upstream)
        assert response.text == "hello from version 1.2.3"
        line = await first_line_with(runtime, instance, "app version")
        assert line == f"app version 1.2.3 on port {instance.upstream.split(':')[1]}"
        assert [i.id for i in await runtime.running("demo")] == [instance.id]
        assert await runtime.running("other") == []
    finally:
        await runtime.stop(instance, 2)


async def test_env_and_volumes_reach_the_app(
    python_build: tuple[Artifact, Lines],
    runtime: ProcessRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "postgresql://secret")
    spec = instance_spec(
        python_build[0], env={"GREETING": "hi", "PORT": "1"}, volumes={"data-1": "/data"}
    )
    instance = await runtime.start(spec, Lines())
    try:
        env = (await get(instance.upstream, "/env")).json()
        assert env["GREETING"] == "hi"
        assert env["PORT"] == instance.upstream.split(":")[1]  # the runtime's port wins
        assert env["HOST"] == "127.0.0.1"
        assert env["HOME"] == python_build[0].ref
        assert env["PATH"].startswith(f"{python_build[0].ref}/.venv/bin:")
        assert "SHIPYARD_DATABASE_URL" not in env
        volume = Path(env["SHIPYARD_VOLUME_DATA_1"])
        assert volume == runtime.state_dir / "volumes" / "data-1"
        assert volume.is_dir()
    finally:
        await runtime.stop(instance, 2)
    assert volume.is_dir()  # volumes outlive instances


async def test_crashed_app_is_restarted(
    python_build: tuple[Artifact, Lines], runtime: ProcessRuntime
) -> None:
    instance = await runtime.start(instance_spec(python_build[0]), Lines())
    state_file = runtime.state_dir / "instances" / f"{instance.id}.json"
    try:
        await get(instance.upstream)
        first_pid = json.loads(state_file.read_text())["pid"]
        with pytest.raises(httpx.TransportError):
            await get(instance.upstream, "/crash", within=0)
        response = await get(instance.upstream)  # back after the 1 s backoff
        assert response.status_code == 200
        state = json.loads(state_file.read_text())
        assert state["pid"] != first_pid
        assert state["restarts"] == 1
        assert not alive(first_pid)
        await first_line_with(runtime, instance, "exited with code 3; restarting in 1s")
    finally:
        await runtime.stop(instance, 2)


async def test_stop_ends_the_whole_process_group(
    python_build: tuple[Artifact, Lines], runtime: ProcessRuntime, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    stubborn = (
        "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    )
    artifact = replace(
        python_build[0], start_command=f'python3 -c "{stubborn}" {pid_file} & exec python3 app.py'
    )
    instance = await runtime.start(instance_spec(artifact), Lines())
    try:
        await get(instance.upstream)
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        child = int(pid_file.read_text())
        leader = json.loads((runtime.state_dir / "instances" / f"{instance.id}.json").read_text())[
            "pid"
        ]
        began = time.monotonic()
        await runtime.stop(instance, 1)
        took = time.monotonic() - began
        assert not alive(leader)
        assert not alive(child)
        assert 0.9 <= took < 5  # the child ignored SIGTERM: SIGKILL after the grace period
        assert await runtime.running("demo") == []
        assert not list((runtime.state_dir / "instances").iterdir())
    finally:
        await runtime.stop(instance, 1)
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    await runtime.stop(instance, 1)  # already gone: no error
    await runtime.stop(Instance("demo-unknown", "r1", "127.0.0.1:1"), 1)
    await runtime.stop(Instance("../../etc", "r1", "127.0.0.1:1"), 1)


async def test_running_survives_a_new_runtime_and_not_a_stop(
    python_build: tuple[Artifact, Lines], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    first = ProcessRuntime(state_dir)
    instance = await first.start(instance_spec(python_build[0]), Lines())
    second = ProcessRuntime(state_dir)  # as after a restart of Shipyard
    try:
        await get(instance.upstream)
        assert await second.running("demo") == [instance]
        assert await second.running("other") == []
        # A state file whose process is gone is stale, and removed.
        stale = dict(json.loads((state_dir / "instances" / f"{instance.id}.json").read_text()))
        stale.update(id="demo-stale", pid=2**22 - 1)
        (state_dir / "instances" / "demo-stale.json").write_text(json.dumps(stale))
        assert await second.running("demo") == [instance]
        assert not (state_dir / "instances" / "demo-stale.json").exists()

        await second.stop(instance, 2)
        assert await second.running("demo") == []
        await asyncio.sleep(1.5)  # the first runtime's supervisor must not bring it back
        assert await first.running("demo") == []
        with pytest.raises(httpx.TransportError):
            await get(instance.upstream, within=0)
    finally:
        await second.stop(instance, 1)
        await first.stop(instance, 1)
        await first.aclose()


async def test_procfile_web_line_wins(tmp_path: Path, runtime: ProcessRuntime) -> None:
    source = write_tree(
        tmp_path / "src",
        {
            "index.html": "static index",
            "server.py": SERVER_PY,
            "Procfile": "release: true\nweb: python3 server.py\n",
        },
    )
    spec = BuildSpec(app="demo", release_id="r2", source_dir=source, profile="static")
    artifact = await runtime.build(spec, Lines())
    assert artifact.start_command == "python3 server.py"
    instance = await runtime.start(instance_spec(artifact), Lines())
    try:
        assert (await get(instance.upstream)).text == "from the procfile"
    finally:
        await runtime.stop(instance, 2)
    # The manifest's start command beats the Procfile.
    manifest = await runtime.build(replace(spec, start_command="python3 other.py"), Lines())
    assert manifest.start_command == "python3 other.py"


async def test_procfile_profile_runs_the_web_line_with_nothing_to_install(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    source = write_tree(
        tmp_path / "src", {"server.py": SERVER_PY, "Procfile": "web: python3 server.py\n"}
    )
    spec = BuildSpec(app="demo", release_id="r1", source_dir=source, profile="procfile")
    artifact = await runtime.build(spec, Lines())
    instance = await runtime.start(instance_spec(artifact), Lines())
    try:
        assert (await get(instance.upstream)).text == "from the procfile"
    finally:
        await runtime.stop(instance, 2)


async def test_static_profile_serves_index_html(tmp_path: Path, runtime: ProcessRuntime) -> None:
    source = write_tree(tmp_path / "src", {"index.html": "<h1>static site</h1>"})
    spec = BuildSpec(app="site", release_id="r1", source_dir=source, profile="static")
    artifact = await runtime.build(spec, Lines())
    instance = await runtime.start(instance_spec(artifact, app="site"), Lines())
    try:
        response = await get(instance.upstream)
        assert response.status_code == 200
        assert response.text == "<h1>static site</h1>"
        assert [i.id for i in await runtime.running("site")] == [instance.id]
    finally:
        await runtime.stop(instance, 2)


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are not installed on this machine",
)
async def test_node_app_with_npm_start(tmp_path: Path, runtime: ProcessRuntime) -> None:
    package = {"name": "hello", "version": "1.0.0", "scripts": {"start": "node server.js"}}
    source = write_tree(
        tmp_path / "src", {"package.json": json.dumps(package), "server.js": SERVER_JS}
    )
    log = Lines()
    spec = BuildSpec(app="node-demo", release_id="r1", source_dir=source, profile="node")
    artifact = await runtime.build(spec, log)
    assert "$ npm install" in log.lines
    assert artifact.start_command == "npm start"
    instance = await runtime.start(
        instance_spec(artifact, app="node-demo", env={"GREETING": "you"}), Lines()
    )
    try:
        assert (await get(instance.upstream)).text == "node says hi to you"
        await first_line_with(runtime, instance, "node app started")
    finally:
        await runtime.stop(instance, 2)


async def test_build_command_runs_and_its_failure_is_concise(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    source = write_tree(tmp_path / "src", {"index.html": "hi"})
    spec = BuildSpec(
        app="demo",
        release_id="ok",
        source_dir=source,
        profile="static",
        build_command="echo building; echo made > made.txt",
        env={"BUILD_FLAVOUR": "tasty"},
    )
    log = Lines()
    artifact = await runtime.build(spec, log)
    assert (Path(artifact.ref) / "made.txt").read_text() == "made\n"
    assert "building" in log.lines

    failing = replace(
        spec,
        release_id="bad",
        build_command='echo "step one of $BUILD_FLAVOUR"; echo "boom: no such thing" >&2; exit 3',
    )
    log = Lines()
    with pytest.raises(BuildFailed) as caught:
        await runtime.build(failing, log)
    message = caught.value.message
    assert "exit code 3" in message
    assert message.endswith("boom: no such thing")
    assert "\n" not in message
    assert "step one of tasty" in log.lines  # the full output went to the log
    assert not (runtime.state_dir / "builds" / "demo" / "bad").exists()


async def test_run_once_returns_the_exit_code_and_logs_output(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    source = write_tree(tmp_path / "src", {"index.html": "hi"})
    artifact = await runtime.build(
        BuildSpec(app="demo", release_id="r1", source_dir=source, profile="static"), Lines()
    )
    spec = instance_spec(artifact, env={"WHO": "release"})
    log = Lines()
    code = await runtime.run_once(spec, 'echo "hello $WHO"; pwd; echo oops >&2; exit 7', log, 10)
    assert code == 7
    assert log.lines == ["hello release", artifact.ref, "oops"]

    log = Lines()
    began = time.monotonic()
    assert await runtime.run_once(spec, "echo waiting; sleep 30", log, 0.5) == 124
    assert time.monotonic() - began < 5
    assert log.lines[0] == "waiting"
    assert "timed out" in log.lines[-1]

    # The memory limit applies (as RLIMIT_AS): a big allocation fails.
    limited = replace(spec, memory_limit_mb=200)
    big = "python3 -c 'bytearray(400 * 1024 * 1024)'"
    assert await runtime.run_once(limited, big, Lines(), 10) != 0
    assert await runtime.run_once(spec, big, Lines(), 10) == 0


async def test_remove_artifact_deletes_only_build_dirs(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    source = write_tree(tmp_path / "src", {"index.html": "hi"})
    artifact = await runtime.build(
        BuildSpec(app="demo", release_id="r1", source_dir=source, profile="static"), Lines()
    )
    assert Path(artifact.ref).is_dir()
    await runtime.remove_artifact(artifact)
    assert not Path(artifact.ref).exists()
    await runtime.remove_artifact(artifact)  # already gone: no error
    await runtime.remove_artifact(Artifact(ref=str(source)))
    await runtime.remove_artifact(Artifact(ref=str(runtime.state_dir / "builds")))
    assert (source / "index.html").exists()


@pytest.mark.parametrize("profile", ["dockerfile", "compose", "image"])
async def test_container_profiles_are_refused(
    profile: str, tmp_path: Path, runtime: ProcessRuntime
) -> None:
    source = write_tree(tmp_path / "src", {"Dockerfile": "FROM scratch\n"})
    spec = BuildSpec(app="demo", release_id="r1", source_dir=source, profile=profile)
    with pytest.raises(Invalid, match="docker runtime"):
        await runtime.build(spec, Lines())


async def test_unsupported_or_startless_sources_are_refused(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    pyproject = '[project]\nname = "x"\nversion = "1"\ndependencies = ["flask"]\n'
    source = write_tree(tmp_path / "py", {"pyproject.toml": pyproject, "app.py": ""})
    spec = BuildSpec(app="demo", release_id="r1", source_dir=source, profile="python")
    with pytest.raises(Invalid, match=r"requirements\.txt"):
        await runtime.build(spec, Lines())

    source = write_tree(tmp_path / "node", {"package.json": '{"name": "x"}'})
    node = BuildSpec(app="demo", release_id="r2", source_dir=source, profile="node")
    with pytest.raises(Invalid, match="no start command"):
        await runtime.build(node, Lines())
    assert not (runtime.state_dir / "builds" / "demo" / "r2").exists()

    with pytest.raises(Invalid, match="no start command"):
        await runtime.start(instance_spec(Artifact(ref=str(source))), Lines())
