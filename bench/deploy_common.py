"""Shared by the deployment benchmarks (deploy_redeploy.py, deploy_first_git.py, log_stream.py):
a ``shipyard serve`` with its own Caddy on free loopback ports, a bootstrap token, local git
repositories of a tiny web app, polling a deployment, and clean-up of what the apps left behind.

Not a benchmark itself. The machine helpers (source described, other load, CPU meter) are the
ones of ci_pipeline.py.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from ci_pipeline import (  # noqa: F401 (re-exported for the deployment benchmarks)
    QUIET,
    ROOT,
    CpuMeter,
    cpu_model,
    describe_source,
    free_port,
    other_load,
    server_log_errors,
    wait_quiet,
)

BIN = Path(sys.executable).parent  # .venv/bin when run as .venv/bin/python
UNLIMITED = "1000000/minute"

# The app of tests/deployments/conftest.py, plus who answers: the container's hostname is the
# first 12 hex digits of its id (docker runtime), the pid tells process-runtime instances apart.
APP_PY = """import os, socket, http.server
VERSION = open('version.txt').read().strip()
HOST = socket.gethostname()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f'VERSION={VERSION} HOST={HOST} PID={os.getpid()}'.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"""

# Health interval: 1 s is the smallest the manifest accepts (whole seconds); with threshold 1
# the gate passes at the first success, and probes come every 0.2 s until then.
HEALTH_INTERVAL_S = 1.0
MANIFEST = """healthcheck:
  path: /
  interval_seconds: 1
  timeout_seconds: 2
  threshold: 1
"""


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout.strip()


def make_repository(
    path: Path, version: str, files: dict[str, str] | None = None, app_file: str = "app.py"
) -> str:
    """A git repository (branch main) holding the tiny app; returns the commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / app_file).write_text(APP_PY)
    (path / "version.txt").write_text(version + "\n")
    (path / "shipyard.yaml").write_text(MANIFEST)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", version)
    return git(path, "rev-parse", "HEAD")


def expect(response: httpx.Response, code: int) -> dict[str, Any]:
    if response.status_code != code:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, expected {code}: {response.text[:500]}"
        )
    return dict(response.json())


class DeployServer:
    """``shipyard serve`` (SQLite in a fresh data dir) whose Caddy serves plain HTTP on a free
    loopback port; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self, workdir: Path, runtime: str, name: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.proxy_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / f"data-{name}"
        self.log_path = workdir / f"shipyard-{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        self.env.update(
            SHIPYARD_RUNTIME=runtime,
            SHIPYARD_PROXY_TLS="off",
            SHIPYARD_PROXY_BIND_HOST="127.0.0.1",
            SHIPYARD_PROXY_HTTP_PORT=str(self.proxy_port),
            SHIPYARD_PROXY_HTTPS_PORT=str(free_port()),
            SHIPYARD_CADDY_ADMIN_ADDRESS=f"127.0.0.1:{free_port()}",
            SHIPYARD_DRAIN_SECONDS="0.5",
            SHIPYARD_STOP_GRACE_SECONDS="2",
            SHIPYARD_RATE_LIMIT_READ=UNLIMITED,
            SHIPYARD_RATE_LIMIT_WRITE=UNLIMITED,
        )
        self.env.update(extra_env or {})
        self.cmd = [
            str(BIN / "shipyard"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.headers: dict[str, str] = {}
        self.app_names: list[str] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def settings_text(self) -> str:
        keys = sorted(k for k in self.env if k.startswith("SHIPYARD_"))
        return " ".join(f"{k}={shlex.quote(self.env[k])}" for k in keys)

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"shipyard exited with {self.proc.returncode}:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.base}/api/v1/health").status_code == 200:
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"shipyard did not become healthy in {timeout} s")
            token = expect(
                client.post(
                    f"{self.base}/api/v1/tokens", json={"name": "bench", "scopes": ["admin"]}
                ),
                201,
            )["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=timeout)

    def create_app(self, client: httpx.Client, name: str, repo: Path) -> str:
        self.app_names.append(name)
        body = {"name": name, "repository": {"clone_url": repo.as_uri(), "default_branch": "main"}}
        return str(expect(client.post("/api/v1/apps", json=body), 201)["id"])

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def delete_apps(self, timeout: float = 60.0) -> None:
        """Delete every app (its instances stop, its routes go); wait until none runs."""
        if self.proc is None or self.proc.poll() is not None or not self.headers:
            return
        with self.client() as client:
            items = client.get("/api/v1/apps").json().get("items", [])
            for app in items:
                client.delete(f"/api/v1/apps/{app['id']}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            any(containers_of(n) for n in self.app_names) or processes_under(self.data_dir)
        ):
            time.sleep(0.5)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.delete_apps()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        # Whatever is left (the teardown did not finish): containers and images of our apps.
        for name in self.app_names:
            remove_docker_leftovers(name)


def processes_under(directory: Path) -> list[int]:
    """Processes running in ``directory`` (the process runtime's instances of a server): they
    outlive the server by design, so a benchmark waits for the teardown to stop them."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd").startswith(str(directory)):
                    found.append(int(entry.name))
    return found


def docker_cli(*args: str, timeout: float = 60.0) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.stdout.strip()


def containers_of(app: str) -> list[str]:
    if not has_docker():
        return []
    return docker_cli("ps", "-aq", "--filter", f"label=shipyard.app={app}").split()


def remove_docker_leftovers(app: str) -> None:
    if not has_docker():
        return
    ids = containers_of(app)
    if ids:
        docker_cli("rm", "-f", *ids)
    images = docker_cli(
        "images", "--format", "{{.Repository}}:{{.Tag}}", f"shipyard/{app.lower()}"
    ).split()
    if images:
        docker_cli("rmi", "-f", *images)


_DOCKER: list[bool] = []


def has_docker() -> bool:
    if not _DOCKER:
        try:
            _DOCKER.append(
                subprocess.run(
                    ["docker", "info"], capture_output=True, timeout=20, check=False
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            _DOCKER.append(False)
    return _DOCKER[0]


def wait_deployment(
    client: httpx.Client, app_id: str, deployment_id: str, timeout: float, poll: float = 0.05
) -> tuple[dict[str, Any], float]:
    """Poll until healthy/failed; (the deployment with its steps, time.monotonic() seen)."""
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/api/v1/apps/{app_id}/deployments/{deployment_id}").json()
        if view["status"] in ("healthy", "failed"):
            return dict(view), time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployment {deployment_id} still {view['status']} at the timeout")
        time.sleep(poll)


def step_seconds(view: dict[str, Any]) -> dict[str, float]:
    """Each step's duration in seconds (started -> finished), from the deployment's view."""
    out: dict[str, float] = {}
    for step in view.get("steps") or []:
        start, end = step.get("started_at_unix_ms"), step.get("finished_at_unix_ms")
        if start is not None and end is not None:
            out[step["name"]] = (end - start) / 1000
    return out


def queue_seconds(view: dict[str, Any]) -> float | None:
    """Created -> first step started: the time in the queue."""
    starts = [s["started_at_unix_ms"] for s in view.get("steps") or [] if s["started_at_unix_ms"]]
    return (min(starts) - view["created_at_unix_ms"]) / 1000 if starts else None


def proxy_get(port: int, host: str, timeout: float = 2.0) -> str | None:
    """The body the proxy serves for ``host`` on a new connection; None if it did not answer
    200 (a new connection each time, like a new visitor)."""
    try:
        with httpx.Client(timeout=timeout) as client:
            r = client.get(f"http://127.0.0.1:{port}/", headers={"Host": host})
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def field_of(body: str | None, key: str) -> str | None:
    for word in (body or "").split():
        name, _, value = word.partition("=")
        if name == key:
            return value
    return None


def print_machine(report: dict[str, Any]) -> None:
    report.update(
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        command=shlex.join([".venv/bin/python", *sys.argv]),
        nproc=os.cpu_count(),
        cpu=cpu_model(),
        source=describe_source(),
    )
    print(f"{report['date']}; {report['nproc']} CPUs, {report['cpu']}")
    print(f"command: {report['command']}")
    print(f"shipyard source: {report['source']}", flush=True)
