"""Throughput and latency of an authenticated ``GET /api/v1/apps`` listing 100 apps, side by side
with a bare Starlette JSON endpoint (bench/bare_app.py), plus Shipyard's idle and loaded RSS.

What it does, in one invocation:

1. starts ``shipyard serve`` (one uvicorn worker) on a free port with a fresh temp data dir and
   SHIPYARD_RATE_LIMIT_READ/WRITE=1000000/minute (the limiter runs, but never blocks); waits for
   ``GET /api/v1/health``, waits 2 s and reads VmRSS (idle memory);
2. creates an admin token over loopback (bootstrap) and 100 apps, and checks the list has 100;
3. starts bench/bare_app.py under uvicorn (one worker, same default loop/HTTP implementation);
4. warms each endpoint up, then for each round runs ``wrk --latency`` against Shipyard, the bare
   ``/json`` endpoint (the baseline of the targets) and, for information, the bare ``/apps``
   endpoint that returns a body of the same shape and size as Shipyard's; non-2xx responses and
   socket errors are counted;
5. prints each round, the median of the rounds, the Shipyard/bare ratio, the targets
   (>= 1,000 req/s and >= 20% of bare; idle RSS <= 100 MB) and Shipyard's RSS after the load.

By default the servers run on CPU 0 and wrk on CPU 1 (taskset), so each has a core, and wrk
keeps 8 connections open: enough to keep the single worker busy (its CPU column shows it), and
below 15, the size of SQLAlchemy's connection pool (5 + 10 overflow). With 15 or more concurrent
requests on one token, once its last-use time is 30 s old each request holds a pooled read
connection while it waits for a second one to record the use: the pool runs dry and every
request hangs for the 30 s pool timeout and then fails with 500, again and again. Runs with
``--connections 16`` show it (a stalled run: no request completes, wrk counts no error).

Run: ``.venv/bin/python bench/api_list_apps.py`` (``--help`` for the knobs).
Needs wrk (Debian package); installed with apt-get when missing and running as root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from idle_memory import (
    IDLE_RSS_TARGET_MB,
    ROOT,
    Server,
    check_is_shipyard_server,
    cpu_seconds,
    describe_source,
    format_kib,
    free_port,
    mb,
    pinned,
    proc_status_kib,
    shipyard_server,
)

APP_COUNT = 100
RPS_TARGET = 1000.0
RATIO_TARGET = 0.20
UNLIMITED = "1000000/minute"
QUIET = 0.1  # cores busy with other processes below which the machine counts as idle


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu: float  # share of one core the server used during the run (1.0 = 100%)
    wrk_cpu: float = 0.0  # the same for wrk
    other_cpu: float = 0.0  # cores busy with processes other than the server and wrk


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing (idempotent)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "check": False, "timeout": 300}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet).returncode:
            subprocess.run(["apt-get", "update"], env=env, **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install -y wrk")
    return found


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def busy_seconds() -> float:
    """CPU seconds all cores have spent not idle since boot (first line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def other_load(seconds: float = 2.0) -> float:
    """Cores kept busy by the rest of the machine while we do nothing (a quiet machine: ~0)."""
    before = busy_seconds()
    time.sleep(seconds)
    return (busy_seconds() - before) / seconds


def parse_wrk(output: str, server_cpu: float) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not total or not rps:
        raise ValueError(f"cannot read wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS_MS[total.group(3)] / 1000,
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(output, "50"),
        p99_ms=_latency_ms(output, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        server_cpu=server_cpu,
    )


class Load:
    """wrk runs against one URL, pinned to a CPU, with optional headers."""

    def __init__(self, wrk: str, args: argparse.Namespace, cpu: int | None) -> None:
        self.wrk = wrk
        self.args = args
        self.cpu = cpu

    def run(self, url: str, headers: dict[str, str], seconds: float, server_pid: int) -> WrkResult:
        cmd = [self.wrk, f"-t{self.args.threads}", f"-c{self.args.connections}"]
        cmd += [f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cpu_before, wall_before = cpu_seconds(server_pid), time.monotonic()
        busy_before = busy_seconds()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            pinned([*cmd, url], self.cpu),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        cpu_used = cpu_seconds(server_pid) - cpu_before
        wall = time.monotonic() - wall_before
        busy = busy_seconds() - busy_before
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_used = (children.ru_utime - children_before.ru_utime) + (
            children.ru_stime - children_before.ru_stime
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        if self.args.verbose:
            print(done.stdout)
        result = parse_wrk(done.stdout, cpu_used / wall)
        result.wrk_cpu = wrk_used / wall
        result.other_cpu = max(0.0, (busy - cpu_used - wrk_used) / wall)
        return result


def set_up_shipyard(base: str) -> str:
    """Bootstrap an admin token over loopback, create the apps, check the list; the token."""
    with httpx.Client(base_url=base, timeout=30.0) as client:
        created = client.post("/api/v1/tokens", json={"name": "bench", "scopes": ["admin"]})
        if created.status_code != 201:
            raise RuntimeError(f"POST /api/v1/tokens: {created.status_code} {created.text}")
        token = created.json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        for i in range(APP_COUNT):
            made = client.post("/api/v1/apps", json={"name": f"app-{i:03d}"})
            if made.status_code != 201:
                raise RuntimeError(f"POST /api/v1/apps: {made.status_code} {made.text}")
        listed = client.get("/api/v1/apps")
        items = listed.json().get("items", []) if listed.status_code == 200 else []
        if len(items) != APP_COUNT:
            raise RuntimeError(f"GET /api/v1/apps: {listed.status_code}, {len(items)} items")
        limit = listed.headers.get("x-ratelimit-limit")
        if limit != UNLIMITED.split("/")[0]:  # the limiter must run, with the raised limit
            raise RuntimeError(f"GET /api/v1/apps: X-RateLimit-Limit is {limit!r}")
        print(
            f"set up: token + {APP_COUNT} apps; GET /api/v1/apps -> {len(items)} items, "
            f"{len(listed.content)} bytes",
            flush=True,
        )
        return str(token)


def bare_server(workdir: Path, cpu: int | None) -> tuple[Server, str]:
    """bench/bare_app.py on a free port (not yet started) and its base URL."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(port)]
    server = Server("bare_app", pinned(cmd, cpu), dict(os.environ), workdir / "bare.log")
    return server, f"http://127.0.0.1:{port}"


def row(label: str, r: WrkResult) -> str:
    return (
        f"{label:<25} {r.rps:>10,.0f} {r.p50_ms:>9.2f} {r.p99_ms:>9.2f} "
        f"{r.requests:>9,} {r.non_2xx:>8,} {r.socket_errors:>7,} {r.server_cpu:>8.0%} "
        f"{r.wrk_cpu:>7.0%} {r.other_cpu:>6.2f}"
    )


HEADER = (
    f"{'':<25} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} "
    f"{'requests':>9} {'non-2xx':>8} {'sockerr':>7} {'srv CPU':>8} {'wrk CPU':>7} {'other':>6}"
)
LEGEND = (
    "srv CPU / wrk CPU: share of one core used by the server / wrk; other: cores kept busy by\n"
    "other processes on the machine during the run (should be ~0 for trustworthy figures)"
)


def median_result(results: list[WrkResult]) -> WrkResult:
    """Field-wise median over the rounds; counts of errors are summed."""

    def med(field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in results))

    return WrkResult(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        rps=med("rps"),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        server_cpu=med("server_cpu"),
        wrk_cpu=med("wrk_cpu"),
        other_cpu=med("other_cpu"),
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GET /api/v1/apps (100 apps) vs bare Starlette.")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per server (3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per server")
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="wrk -c (8; 15 or more make Shipyard stall, see the module docstring)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (1)")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers to CPU 0 and wrk to CPU 1"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="wait up to this many seconds for other processes to leave the CPUs idle (0)",
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="repeat a run in which other processes kept more cores than this busy (0.25)",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a disturbed run (2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    args = parser.parse_args()
    args.rounds = max(1, min(args.rounds, 10))
    args.duration = max(1.0, min(args.duration, 120.0))
    args.warmup = max(0.0, min(args.warmup, 60.0))
    args.wait_quiet = max(0.0, min(args.wait_quiet, 3600.0))
    args.retries = max(0, min(args.retries, 5))
    return args


def main() -> int:
    args = parse_args()
    wrk = ensure_wrk()
    can_pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    server_cpu, load_cpu = (0, 1) if can_pin else (None, None)
    print(
        f"wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds x {args.duration:.0f} s "
        f"(+{args.warmup:.0f} s warm-up per server); "
        + (
            "servers pinned to CPU 0, wrk to CPU 1"
            if can_pin
            else "no CPU pinning (the OS schedules both on the 2 cores)"
        ),
        flush=True,
    )
    source = describe_source()
    print(f"shipyard source: {source}")
    background = other_load()
    deadline = time.monotonic() + args.wait_quiet
    while background > QUIET and time.monotonic() < deadline:
        time.sleep(5)
        background = other_load()
    print(f"other load before start: {background:.2f} cores busy", flush=True)
    if background > QUIET:
        print("WARNING: the machine is not idle; figures will be low and noisy", flush=True)
    load = Load(wrk, args, load_cpu)
    labels = {
        "shipyard": "GET /api/v1/apps",
        "bare": "bare Starlette /json",
        "bare_apps": "bare /apps (38 KB)",
    }
    results: dict[str, list[WrkResult]] = {name: [] for name in labels}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        workdir = Path(tmp)
        shipyard, base = shipyard_server(
            workdir,
            cpu=server_cpu,
            extra_env={
                "SHIPYARD_RATE_LIMIT_READ": UNLIMITED,
                "SHIPYARD_RATE_LIMIT_WRITE": UNLIMITED,
            },
        )
        bare, bare_base = bare_server(workdir, server_cpu)
        try:
            shipyard.start()
            ready_s = shipyard.wait_ready(f"{base}/api/v1/health")
            print(f"shipyard serve answered /api/v1/health after {ready_s:.1f} s", flush=True)
            time.sleep(2.0)
            check_is_shipyard_server(shipyard.pid)
            idle_kib = proc_status_kib(shipyard.pid, "VmRSS")
            print(f"shipyard serve (PID {shipyard.pid}) idle VmRSS: {format_kib(idle_kib)}")

            started = time.monotonic()
            token = set_up_shipyard(base)
            print(f"set up took {time.monotonic() - started:.1f} s", flush=True)
            bare.start()
            bare.wait_ready(f"{bare_base}/json")
            # name -> (url, headers, pid of the server process)
            targets = {
                "shipyard": (
                    f"{base}/api/v1/apps",
                    {"Authorization": f"Bearer {token}"},
                    shipyard.pid,
                ),
                "bare": (f"{bare_base}/json", {}, bare.pid),
                "bare_apps": (f"{bare_base}/apps", {}, bare.pid),
            }
            if args.warmup:
                for url, headers, pid in targets.values():
                    load.run(url, headers, args.warmup, pid)
            print(LEGEND)
            print(HEADER)
            for i in range(1, args.rounds + 1):
                for name, (url, headers, pid) in targets.items():
                    # A run during which other processes took CPU is repeated (bounded);
                    # the errors of the repeated runs still count.
                    non_2xx = socket_errors = 0
                    for attempt in range(args.retries + 1):
                        result = load.run(url, headers, args.duration, pid)
                        disturbed = result.other_cpu > args.max_other
                        last = attempt == args.retries
                        note = " (disturbed, repeated)" if disturbed and not last else ""
                        print(row(f"{i}: {labels[name]}", result) + note, flush=True)
                        non_2xx += result.non_2xx
                        socket_errors += result.socket_errors
                        if not disturbed or last:
                            break
                    result.non_2xx, result.socket_errors = non_2xx, socket_errors
                    results[name].append(result)
            loaded_kib = proc_status_kib(shipyard.pid, "VmRSS")
            peak_kib = proc_status_kib(shipyard.pid, "VmHWM")
        finally:
            bare.stop()
            shipyard.stop()

    medians = {name: median_result(runs) for name, runs in results.items()}
    ship = medians["shipyard"]
    ratio = ship.rps / medians["bare"].rps if medians["bare"].rps else 0.0
    ratio_apps = ship.rps / medians["bare_apps"].rps if medians["bare_apps"].rps else 0.0
    errors = sum(m.non_2xx + m.socket_errors for m in medians.values())
    # A run that got (almost) nothing done while the others did means the server stalled.
    stalled = [
        f"{labels[name]} round {i}"
        for name, runs in results.items()
        for i, r in enumerate(runs, 1)
        if r.rps < 0.1 * max(x.rps for x in runs)
    ]
    checks = {
        f"shipyard >= {RPS_TARGET:,.0f} req/s": ship.rps >= RPS_TARGET,
        f"shipyard >= {RATIO_TARGET:.0%} of bare /json": ratio >= RATIO_TARGET,
        f"idle VmRSS <= {IDLE_RSS_TARGET_MB:.0f} MB": mb(idle_kib) <= IDLE_RSS_TARGET_MB,
        "no non-2xx responses or socket errors": errors == 0,
        "no stalled run (< 10% of the best round's req/s)": not stalled,
    }
    print(
        f"\nmedian of {args.rounds} rounds (requests: total of the kept runs; non-2xx, "
        "socket errors: total of all runs)"
    )
    print(HEADER)
    for name, label in labels.items():
        print(row(label, medians[name]))
    print(f"ratio shipyard / bare /json: {ratio:.1%}")
    print(f"ratio shipyard / bare /apps (same 38 KB body, for information): {ratio_apps:.1%}")
    print(f"shipyard VmRSS idle: {format_kib(idle_kib)}")
    print(
        f"shipyard VmRSS after load: {format_kib(loaded_kib)} (peak VmHWM {format_kib(peak_kib)})"
    )
    if stalled:
        print(f"stalled runs: {', '.join(stalled)}")
    for name, ok in checks.items():
        print(f"target {name}: {'MET' if ok else 'NOT MET'}")

    if args.json:
        figures = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "source": source,
            "pinned": bool(can_pin),
            "other_load_before": background,
            "stalled": stalled,
            "rounds": {name: [vars(r) for r in runs] for name, runs in results.items()},
            "median": {name: vars(m) for name, m in medians.items()},
            "ratio": {"bare": ratio, "bare_apps": ratio_apps},
            "rss_kib": {"idle": idle_kib, "after_load": loaded_kib, "peak": peak_kib},
            "targets": checks,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
