"""Idle resident memory of ``shipyard serve``, and the helpers that start and watch servers.

For each of ``--repeat`` fresh data directories: start ``shipyard serve`` on a free port, wait
until ``GET /api/v1/health`` answers, wait ``--settle`` seconds, read VmRSS (and VmHWM, the peak)
from /proc/<pid>/status, stop the server. ``shipyard serve`` execs into ``python -m
shipyard.server`` so the PID we started is the server's.

Run: ``.venv/bin/python bench/idle_memory.py`` (target: at most 100 MB = 10^8 bytes).
bench/api_list_apps.py imports the helpers below and reports the same figure as part of its run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin when run as .venv/bin/python
IDLE_RSS_TARGET_MB = 100.0


def describe_source() -> str:
    """Which Shipyard code the servers will run: the package's directory and its git state.

    The children inherit this process's sys.path rules (PYTHONPATH first), so this is the
    package they import; set PYTHONPATH=<checkout>/src to benchmark another checkout.
    """
    spec = importlib.util.find_spec("shipyard")
    if spec is None or spec.origin is None:
        return "shipyard is not importable"
    where = Path(spec.origin).parent
    git = subprocess.run(
        ["git", "-C", str(where), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    state = git.stdout.strip() if git.returncode == 0 else "not a git checkout"
    return f"{where} ({state})"


def free_port() -> int:
    """A port that was free a moment ago (bind port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """Prefix ``cmd`` with taskset (which execs, so the PID stays the command's own)."""
    if cpu is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def proc_status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM); the kernel's kB are KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def mb(kib: float) -> float:
    """KiB to MB (10^6 bytes), the unit of the targets."""
    return kib * 1024 / 1e6


def mib(kib: float) -> float:
    return kib / 1024


def format_kib(kib: float) -> str:
    return f"{mb(kib):.1f} MB ({mib(kib):.1f} MiB)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


class Server:
    """A child server process with its log in a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, url: str, timeout: float = 60.0) -> float:
        """Poll ``url`` until it answers 200; returns the seconds it took."""
        assert self.proc is not None
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def shipyard_server(
    workdir: Path, *, cpu: int | None = None, extra_env: dict[str, str] | None = None
) -> tuple[Server, str]:
    """A ``shipyard serve`` (not yet started) on a free port with a fresh data dir in workdir."""
    port = free_port()
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(extra_env or {})
    cmd = [
        str(BIN / "shipyard"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    server = Server("shipyard serve", pinned(cmd, cpu), env, workdir / "shipyard.log")
    return server, f"http://127.0.0.1:{port}"


def check_is_shipyard_server(pid: int) -> None:
    """After the exec, the PID runs ``python -m shipyard.server``; make sure we measure that."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"shipyard.server" not in cmdline:
        raise RuntimeError(f"PID {pid} runs {cmdline!r}, not python -m shipyard.server")


def measure_idle(settle: float, cpu: int | None = None) -> dict[str, float]:
    """Start a fresh server, wait for health and ``settle`` s, read its memory, stop it."""
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        server, base = shipyard_server(Path(tmp), cpu=cpu)
        try:
            server.start()
            ready_s = server.wait_ready(f"{base}/api/v1/health")
            time.sleep(settle)
            check_is_shipyard_server(server.pid)
            return {
                "ready_s": ready_s,
                "rss_kib": proc_status_kib(server.pid, "VmRSS"),
                "hwm_kib": proc_status_kib(server.pid, "VmHWM"),
            }
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Idle RSS of shipyard serve.")
    parser.add_argument("--repeat", type=int, default=3, help="fresh starts (default 3)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after health (2)")
    args = parser.parse_args()
    if not shutil.which(str(BIN / "shipyard")):
        print(f"no shipyard command in {BIN}; run with the project's .venv/bin/python")
        return 2
    print(f"shipyard source: {describe_source()}")
    rows = []
    print(f"{'start':>5}  {'ready (s)':>9}  {'VmRSS':>20}  {'VmHWM (peak)':>20}")
    for i in range(1, max(1, min(args.repeat, 20)) + 1):
        row = measure_idle(args.settle)
        rows.append(row)
        print(
            f"{i:>5}  {row['ready_s']:>9.2f}  {format_kib(row['rss_kib']):>20}  "
            f"{format_kib(row['hwm_kib']):>20}"
        )
    worst = max(r["rss_kib"] for r in rows)
    median = statistics.median(r["rss_kib"] for r in rows)
    met = mb(worst) <= IDLE_RSS_TARGET_MB
    print(
        f"idle VmRSS: median {format_kib(median)}, max {format_kib(worst)}; "
        f"target <= {IDLE_RSS_TARGET_MB:.0f} MB: {'MET' if met else 'NOT MET'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
