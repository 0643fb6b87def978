"""CI engine overhead: a 20-step pipeline through Shipyard's RustCI API (/v1), side by side with
the same 20 commands run directly.

What it does, in one invocation:

1. baseline: the pipeline's 20 commands in one ``sh -c 'c1; c2; ...'`` and as 20 separate
   ``subprocess.run(["sh", "-c", c])`` calls, each timed with time.perf_counter, ``--baseline``
   times (median reported);
2. starts ``shipyard serve`` on a free port with a fresh temp data dir, rate limits at
   1000000/minute and SHIPYARD_WORKER_CONCURRENCY=4 (the default); makes an admin token over
   loopback (bootstrap), a local git repository (one commit) and a workspace on its file:// URL,
   and a pipeline of one stage with 20 steps: step 1 ``date +%s.%N > <marker>``, steps 2-19
   ``true``, step 20 ``date +%s.%N > <marker>`` (markers are files in the bench's temp dir,
   named after $SHIPYARD_EXECUTION_ID, so unique per execution);
3. one warm-up execution (the first clones the repository into Shipyard's git cache), then
   ``--runs`` executions one after the other: wall time from just before the POST .../executions
   to the first GET /v1/api/executions/{id} that says completed/failed (polled every
   ``--poll-ms``), and from the marker files: POST -> step 1 running (the first-step delay, at the
   clock's resolution, not the poll's) and step 1 -> step 20 (the steps alone);
4. ``--burst`` executions started at once (concurrent POSTs with httpx.AsyncClient), polled every
   ``--burst-poll-ms``: statuses, wall time from the first POST to the last completion, against
   the single-execution median;
5. the same burst on a second server with SHIPYARD_WORKER_CONCURRENCY=10 (``--concurrency``
   lists the values; the first one also runs step 3);
6. the server's idle VmRSS 2 s after its last execution, and the ERROR lines of its log.

For each phase it also prints the cores used by the server (with its steps and git), by its
event-loop thread alone, by this client and by every other process (trust runs where "other" is
near 0; ``--wait-quiet`` waits for that), and where the time goes according to the millisecond
timestamps Shipyard stores (read-only from its SQLite file: queue, checkout, per step, between
steps, finish), with the executions whose runner log lines (22 each) were not all stored.

It prints a table and the targets: per-step overhead = (median wall - median of 20 separate sh)
/ 20 < 50 ms; POST -> first step running < 200 ms (median and max); every burst execution
completes. Exit status 1 if a target is missed.

Only 127.0.0.1 is contacted. Servers are stopped with SIGTERM, then SIGKILL, on exit; every loop
is bounded in count and in time (``--timeout`` per execution and per burst).

Run: ``.venv/bin/python bench/ci_pipeline.py`` (about 1 minute; ``--help`` for the knobs,
``--json FILE`` for every figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin when run as .venv/bin/python
UNLIMITED = "1000000/minute"
STEPS = 20
PER_STEP_TARGET_MS = 50.0
FIRST_STEP_TARGET_MS = 200.0
FINISHED = ("completed", "failed", "cancelled")
QUIET = 0.15  # cores busy with other processes below which the machine counts as idle
QUIET_RUN = 0.25  # an execution counts as undisturbed when other processes used less than this
QUIET_GATE_S = 60.0  # with --wait-quiet: longest wait for a quiet second before each execution


# --- machine and processes ------------------------------------------------------------------


def describe_source() -> str:
    """The Shipyard package the servers import (PYTHONPATH first), with its git state."""
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
    return f"{where} ({git.stdout.strip() if git.returncode == 0 else 'not a git checkout'})"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (first line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, children: bool = True, thread: int | None = None) -> float:
    """CPU seconds of ``pid``: utime + stime (+ cutime + cstime: children, once reaped); of one
    of its threads (``thread``: a tid, e.g. ``pid`` itself for the main thread) if given."""
    where = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(where).read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def other_load(seconds: float = 2.0) -> float:
    """Cores kept busy by other processes while this one sleeps (a quiet machine: ~0)."""
    before = busy_seconds()
    time.sleep(seconds)
    return (busy_seconds() - before) / seconds


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


class CpuMeter:
    """Cores used by the server (with its reaped steps and git), by its main thread alone (the
    event loop), by this client, and by every other process (the rest of /proc/stat)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.t0 = time.monotonic()
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        loop = process_cpu(self.pid, children=False, thread=self.pid)
        return busy_seconds(), process_cpu(self.pid), loop, own_cpu()

    def read(self) -> dict[str, float]:
        span = max(time.monotonic() - self.t0, 1e-9)
        busy, server, loop, own = (b - a for a, b in zip(self.start, self._sample(), strict=True))
        return {
            "seconds": span,
            "server_cpu_s": server,
            "server_cores": server / span,
            "server_loop_cores": loop / span,
            "client_cores": own / span,
            "other_cores": max(0.0, busy - server - own) / span,
        }


class Server:
    """``shipyard serve`` with a fresh data dir; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, workdir: Path, concurrency: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / f"data-c{concurrency}"
        self.log_path = workdir / f"shipyard-c{concurrency}.log"
        self.db = self.data_dir / "shipyard.db"  # the default database URL
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        self.env.update(
            SHIPYARD_RATE_LIMIT_RUSTCI=UNLIMITED,
            SHIPYARD_RATE_LIMIT_READ=UNLIMITED,
            SHIPYARD_RATE_LIMIT_WRITE=UNLIMITED,
            SHIPYARD_WORKER_CONCURRENCY=str(concurrency),
        )
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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

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
                        return
                time.sleep(0.1)
        raise RuntimeError(f"shipyard did not become healthy in {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


# --- the workload ---------------------------------------------------------------------------


def commands(first_marker: str, last_marker: str) -> list[str]:
    """The 20 step commands: timestamps (shell words naming files) around 18 ``true``."""
    return [
        f"date +%s.%N > {first_marker}",
        *(["true"] * (STEPS - 2)),
        f"date +%s.%N > {last_marker}",
    ]


def read_stamp(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def baseline(markers: Path, repeat: int) -> dict[str, list[float]]:
    """The same 20 commands run directly: one sh, and 20 separate sh processes (seconds)."""
    cmds = commands(shlex.quote(f"{markers}/base-first"), shlex.quote(f"{markers}/base-last"))
    script = "; ".join(cmds)
    one: list[float] = []
    separate: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(["sh", "-c", script], check=True, timeout=60)
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        for cmd in cmds:
            subprocess.run(["sh", "-c", cmd], check=True, timeout=60)
        separate.append(time.perf_counter() - start)
    return {"one_sh_s": one, "separate_sh_s": separate}


def make_repository(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "README").write_text("shipyard CI benchmark\n")
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "README"],
        ["git", *ident, "commit", "-q", "-m", "benchmark repository"],
    ):
        subprocess.run(argv, cwd=path, check=True, timeout=60, capture_output=True)


def expect(response: httpx.Response, code: int) -> dict[str, Any]:
    if response.status_code != code:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, expected {code}: {response.text[:500]}"
        )
    return dict(response.json())


def set_up(base: str, repo: Path, markers: Path) -> tuple[dict[str, str], str]:
    """Token (loopback bootstrap), workspace, one 20-step pipeline; returns (headers, pipeline)."""
    with httpx.Client(base_url=base, timeout=30.0) as client:
        token = expect(
            client.post("/api/v1/tokens", json={"name": "bench", "scopes": ["admin"]}), 201
        )["token"]
        headers = {"Authorization": f"Bearer {token}"}
        workspace = expect(
            client.post(
                "/v1/api/workspaces",
                headers=headers,
                json={"name": "bench", "repository_url": repo.as_uri(), "branch": "main"},
            ),
            201,
        )["id"]
        # The step's sh expands the execution id: one pipeline, fresh marker files per execution.
        where = f'"{markers}/$SHIPYARD_EXECUTION_ID'
        cmds = commands(where + '-first"', where + '-last"')
        steps = [{"name": f"t{i:02d}", "command": c} for i, c in enumerate(cmds, 1)]
        pipeline = expect(
            client.post(
                f"/v1/api/workspaces/{workspace}/pipelines",
                headers=headers,
                json={
                    "name": "twenty",
                    "stages": [{"name": "s", "steps": steps}],
                    "triggers": ["manual"],
                },
            ),
            201,
        )["id"]
    return headers, pipeline


@dataclass
class Execution:
    id: str
    status: str
    posted_at: float  # time.time() just before the POST was sent
    post_s: float  # the POST's own round trip
    wall_s: float  # POST sent -> first poll that saw it finished
    first_step_s: float | None  # POST sent -> step 1 wrote its timestamp
    steps_s: float | None  # step 1 timestamp -> step 20 timestamp
    step_statuses: list[str] = field(default_factory=list)
    poll_errors: int = 0  # polls that did not answer 200
    other_cores: float | None = None  # cores other processes used meanwhile (sequential only)


def finish_record(
    exec_id: str, detail: dict[str, Any], posted: float, post_s: float, wall: float, markers: Path
) -> Execution:
    first = read_stamp(markers / f"{exec_id}-first")
    last = read_stamp(markers / f"{exec_id}-last")
    statuses = [s["status"] for stage in detail.get("stages", []) for s in stage["steps"]]
    return Execution(
        id=exec_id,
        status=detail["status"],
        posted_at=posted,
        post_s=post_s,
        wall_s=wall,
        first_step_s=None if first is None else first - posted,
        steps_s=None if first is None or last is None else last - first,
        step_statuses=statuses,
    )


def run_one(
    client: httpx.Client, pipeline: str, markers: Path, poll_s: float, timeout: float
) -> tuple[Execution, int]:
    """Start one execution and poll it to the end (or ``timeout``); returns it and the polls.

    A poll that does not answer 200 is counted (``poll_errors``) and polling goes on.
    """
    posted = time.time()
    start = time.perf_counter()
    exec_id = expect(
        client.post(f"/v1/api/pipelines/{pipeline}/executions", json={"trigger": "manual"}), 202
    )["id"]
    post_s = time.perf_counter() - start
    deadline = start + timeout
    polls = errors = 0
    detail: dict[str, Any] = {"status": "unknown"}
    while time.perf_counter() < deadline:
        response = client.get(f"/v1/api/executions/{exec_id}")
        polls += 1
        if response.status_code != 200:
            errors += 1
        else:
            detail = dict(response.json())
            if detail["status"] in FINISHED:
                wall = time.perf_counter() - start
                record = finish_record(exec_id, detail, posted, post_s, wall, markers)
                record.poll_errors = errors
                return record, polls
        time.sleep(poll_s)
    record = finish_record(exec_id, detail, posted, post_s, timeout, markers)
    record.status = f"timeout ({detail['status']})"
    record.poll_errors = errors
    return record, polls


async def run_burst(
    base: str,
    headers: dict[str, str],
    pipeline: str,
    count: int,
    markers: Path,
    poll_s: float,
    timeout: float,
) -> tuple[list[Execution], float]:
    """Start ``count`` executions at once and poll them all; returns them and the total wall."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60.0, limits=limits
    ) as client:
        # Open the connections first, so the burst does not also measure TCP handshakes.
        await asyncio.gather(*(client.get("/v1/health") for _ in range(count)))
        start = time.perf_counter()
        posted = time.time()

        async def post() -> tuple[str, float, float]:
            sent, t0 = time.time(), time.perf_counter()
            response = await client.post(
                f"/v1/api/pipelines/{pipeline}/executions", json={"trigger": "manual"}
            )
            return expect(response, 202)["id"], sent, time.perf_counter() - t0

        started = await asyncio.gather(*(post() for _ in range(count)))
        pending = {exec_id: (sent, post_s) for exec_id, sent, post_s in started}
        done: list[Execution] = []
        deadline = start + timeout
        errors = 0
        while pending and time.perf_counter() < deadline:
            ids = list(pending)
            answers = await asyncio.gather(*(client.get(f"/v1/api/executions/{i}") for i in ids))
            now = time.perf_counter()
            for exec_id, response in zip(ids, answers, strict=True):
                if response.status_code != 200:
                    errors += 1
                    continue
                detail = response.json()
                if detail["status"] in FINISHED:
                    sent, post_s = pending.pop(exec_id)
                    wall = now - start - (sent - posted)
                    done.append(finish_record(exec_id, detail, sent, post_s, wall, markers))
            if pending:
                await asyncio.sleep(poll_s)
        total = time.perf_counter() - start
        for exec_id, (sent, post_s) in pending.items():  # never finished
            record = finish_record(exec_id, {"status": "timeout"}, sent, post_s, timeout, markers)
            done.append(record)
        if done:
            done[0].poll_errors = errors
        return done, total


# --- where the time goes -------------------------------------------------------------------

PHASES = (
    ("queue", "POST stored -> worker claimed it (execution running)"),
    ("checkout", "execution running -> repository checked out (git)"),
    ("to_step1", "checked out -> step 1 running"),
    ("step", "per step: running -> completed (spawn, run, reap, store)"),
    ("between", "per step: completed -> next step running"),
    ("finish", "step 20 completed -> execution completed"),
)
LOG_LINES = 2 + STEPS  # "checkout ...", "checked out ...", then "$ <command>" per step


def breakdown(db: Path, run_ids: list[str]) -> dict[str, Any] | None:
    """Median ms of each phase, from the millisecond timestamps Shipyard stores (read-only),
    and how many executions lack some of the log lines the runner writes (LOG_LINES each).

    Reads runs.created_at_ms/started_at_ms/finished_at_ms, run_steps.started_at_ms/
    finished_at_ms and log_lines (the at_ms of "checkout ..."/"checked out ..."). These are
    internal tables: if the schema differs, the breakdown is left out.
    """
    per: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    short: list[str] = []
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        for run_id in run_ids:
            created, started, finished = con.execute(
                "SELECT created_at_ms, started_at_ms, finished_at_ms FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            logs = con.execute(
                "SELECT at_ms, line, step_id FROM log_lines WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
            steps = con.execute(
                "SELECT id, name, started_at_ms, finished_at_ms FROM run_steps "
                "WHERE run_id = ? ORDER BY position",
                (run_id,),
            ).fetchall()
            if len(logs) < LOG_LINES:
                logged = {step_id for _, _, step_id in logs}
                runner = [line for _, line, step_id in logs if step_id is None]
                missing = [
                    f"'{word} ...'"
                    for word in ("checkout", "checked out")
                    if not any(line.startswith(word + " ") for line in runner)
                ]
                missing += [name for step_id, name, _, _ in steps if step_id not in logged]
                short.append(f"{run_id}: {len(logs)}/{LOG_LINES} lines; missing {missing}")
            if None in (started, finished) or any(None in row for row in steps):
                continue  # unfinished: no timings
            out = [at for at, line, sid in logs if sid is None and line.startswith("checked out")]
            per["queue"].append(started - created)
            if out:
                per["checkout"].append(out[0] - started)
                per["to_step1"].append(steps[0][2] - out[0])
            per["step"].extend(end - begin for _, _, begin, end in steps)
            per["between"].extend(steps[i + 1][2] - steps[i][3] for i in range(len(steps) - 1))
            per["finish"].append(finished - steps[-1][3])
    except (sqlite3.Error, TypeError, ValueError, IndexError):
        return None
    finally:
        con.close()
    phases = {name: float(median(values)) for name, values in per.items() if values}
    return {"phases_ms": phases, "short_logs": short}


def print_breakdown(found: dict[str, Any], n: int) -> None:
    print(f"where the time goes (Shipyard's ms timestamps, median over {n} executions):")
    for name, label in PHASES:
        if name in found["phases_ms"]:
            print(f"  {found['phases_ms'][name]:7.1f} ms  {label}")
    print(
        f"executions missing some of their {LOG_LINES} runner log lines: "
        f"{len(found['short_logs'])} of {n}"
    )
    for line in found["short_logs"]:
        print(f"  {line}")


def server_log_errors(path: Path) -> dict[str, Any]:
    """ERROR lines in the server's log (count, first five), and 'database is locked' count."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"error_lines": -1, "database_is_locked": -1, "first_errors": []}
    errors = [line for line in text.split("\n") if " ERROR " in line or line.startswith("ERROR:")]
    return {
        "error_lines": len(errors),
        "database_is_locked": text.count("database is locked"),
        "first_errors": errors[:5],
    }


# --- reporting ------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def all_completed(runs: list[Execution]) -> bool:
    return all(r.status == "completed" and r.step_statuses == ["completed"] * STEPS for r in runs)


def summarize_runs(runs: list[Execution], baseline_sep: float) -> dict[str, Any]:
    walls = [r.wall_s for r in runs]
    firsts = present([r.first_step_s for r in runs])
    spans = present([r.steps_s for r in runs])
    wall = median(walls)
    tails = [
        r.wall_s - r.first_step_s - r.steps_s
        for r in runs
        if r.first_step_s is not None and r.steps_s is not None
    ]
    return {
        "n": len(runs),
        "statuses": {
            s: [r.status for r in runs].count(s) for s in sorted({r.status for r in runs})
        },
        "all_steps_completed": all_completed(runs),
        "wall_median_s": wall,
        "wall_min_s": min(walls),
        "wall_max_s": max(walls),
        "per_step_overhead_s": (wall - baseline_sep) / STEPS,
        "first_step_median_s": median(firsts) if firsts else None,
        "first_step_max_s": max(firsts) if firsts else None,
        "steps_span_median_s": median(spans) if spans else None,
        "last_step_to_seen_median_s": median(tails) if tails else None,
        "post_median_s": median([r.post_s for r in runs]),
        "poll_errors": sum(r.poll_errors for r in runs),
        "quiet": quiet_subset(runs, baseline_sep),
    }


def quiet_subset(runs: list[Execution], baseline_sep: float) -> dict[str, Any] | None:
    """The same figures over the executions during which other processes used < QUIET_RUN
    cores (for information: the targets are judged on all executions)."""
    quiet = [r for r in runs if r.other_cores is not None and r.other_cores < QUIET_RUN]
    firsts = present([r.first_step_s for r in quiet])
    if not quiet or not firsts:
        return None
    wall = median([r.wall_s for r in quiet])
    return {
        "n": len(quiet),
        "wall_median_s": wall,
        "per_step_overhead_s": (wall - baseline_sep) / STEPS,
        "first_step_median_s": median(firsts),
        "first_step_max_s": max(firsts),
    }


def print_runs(runs: list[Execution]) -> None:
    print(
        f"{'#':>3} {'status':>9} {'POST ms':>8} {'->step1 ms':>10} {'step1->20 ms':>12} "
        f"{'wall ms':>9} {'other cores':>11}"
    )
    for i, r in enumerate(runs, 1):
        other = "" if r.other_cores is None else f"{r.other_cores:.2f}"
        print(
            f"{i:>3} {r.status:>9} {ms(r.post_s):>8} {ms(r.first_step_s):>10} "
            f"{ms(r.steps_s):>12} {ms(r.wall_s):>9} {other:>11}"
        )


def cores(cpu: dict[str, float]) -> str:
    return (
        f"cores busy: server {cpu['server_cores']:.2f} (of which its event-loop thread "
        f"{cpu['server_loop_cores']:.2f}), client {cpu['client_cores']:.2f}, "
        f"other processes {cpu['other_cores']:.2f}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="sequential executions (10)")
    parser.add_argument("--baseline", type=int, default=20, help="baseline repetitions (20)")
    parser.add_argument("--burst", type=int, default=10, help="executions started at once (10)")
    parser.add_argument(
        "--concurrency",
        default="4,10",
        help="SHIPYARD_WORKER_CONCURRENCY of each server, comma-separated (4,10); the first "
        "server also runs the sequential executions",
    )
    parser.add_argument("--poll-ms", type=float, default=10.0, help="poll interval, single (10)")
    parser.add_argument(
        "--burst-poll-ms",
        type=float,
        default=100.0,
        help="poll interval, burst (100: every poll asks for each unfinished execution)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds an execution or a burst may take"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other processes to leave the CPUs idle before "
        "starting, and up to min(this, 60) s for a quiet second before each execution and "
        "each burst (0: do not wait)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    args.runs = max(1, min(args.runs, 100))
    args.baseline = max(1, min(args.baseline, 200))
    args.burst = max(1, min(args.burst, 50))
    args.concurrency = [max(1, min(int(c), 64)) for c in args.concurrency.split(",") if c][:4]
    args.poll_ms = max(1.0, min(args.poll_ms, 1000.0))
    args.burst_poll_ms = max(1.0, min(args.burst_poll_ms, 1000.0))
    args.timeout = max(10.0, min(args.timeout, 1800.0))
    args.wait_quiet = max(0.0, min(args.wait_quiet, 3600.0))
    return args


def quiet_gate(limit: float) -> float:
    """Wait (up to ``limit`` s) for one second in which other processes leave the CPUs idle."""
    deadline = time.monotonic() + limit
    background = other_load(1.0)
    while background > QUIET and time.monotonic() < deadline:
        background = other_load(1.0)
    return background


def wait_quiet(limit: float) -> float:
    background = other_load()
    deadline = time.monotonic() + limit
    while background > QUIET and time.monotonic() < deadline:
        time.sleep(5)
        background = other_load()
    return background


def sequential(
    server: Server, client: httpx.Client, pipeline: str, markers: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """``args.runs`` executions one after the other (stops at the first that does not finish).

    With --wait-quiet, each waits (up to QUIET_GATE_S) for a second in which other processes
    leave the CPUs idle; the CPU figures cover the executions only, not those waits.
    """
    runs: list[Execution] = []
    polls = 0
    totals = dict.fromkeys(("seconds", "server_cpu_s", "loop_s", "client_s", "other_s"), 0.0)
    for _ in range(args.runs):
        if args.wait_quiet:
            quiet_gate(min(args.wait_quiet, QUIET_GATE_S))
        meter = CpuMeter(server.pid)
        try:
            run, n = run_one(client, pipeline, markers, args.poll_ms / 1000, args.timeout)
        except (RuntimeError, httpx.HTTPError) as exc:
            if not runs:
                raise
            print(f"execution {len(runs) + 1} could not be started ({exc}); stopping here")
            break
        one = meter.read()
        run.other_cores = one["other_cores"]
        for key, cores_key in (
            ("loop_s", "server_loop_cores"),
            ("client_s", "client_cores"),
            ("other_s", "other_cores"),
        ):
            totals[key] += one[cores_key] * one["seconds"]
        totals["seconds"] += one["seconds"]
        totals["server_cpu_s"] += one["server_cpu_s"]
        runs.append(run)
        polls += n
        if run.status not in FINISHED:
            print(f"execution {run.id} did not finish in {args.timeout:.0f} s; stopping here")
            break
    span = max(totals["seconds"], 1e-9)
    cpu = {
        "seconds": totals["seconds"],
        "server_cpu_s": totals["server_cpu_s"],
        "server_cores": totals["server_cpu_s"] / span,
        "server_loop_cores": totals["loop_s"] / span,
        "client_cores": totals["client_s"] / span,
        "other_cores": totals["other_s"] / span,
    }
    print(f"\n{len(runs)} sequential executions (polled every {args.poll_ms:.0f} ms):")
    print_runs(runs)
    summary = summarize_runs(runs, args.baseline_separate_s)
    summary.update(cpu)
    summary["polls_per_execution"] = polls / len(runs)
    summary["server_cpu_per_execution_s"] = cpu["server_cpu_s"] / len(runs)
    print(
        f"{cores(cpu)}; server CPU {ms(summary['server_cpu_per_execution_s'])} ms per execution "
        f"(steps and git included); {summary['polls_per_execution']:.0f} polls per execution"
    )
    quiet = summary["quiet"]
    if quiet:
        print(
            f"the {quiet['n']} executions with other processes < {QUIET_RUN} cores: wall median "
            f"{ms(quiet['wall_median_s'])} ms, per-step overhead "
            f"{ms(quiet['per_step_overhead_s'])} ms, POST -> step 1 median / max "
            f"{ms(quiet['first_step_median_s'])} / {ms(quiet['first_step_max_s'])} ms"
        )
    found = breakdown(server.db, [r.id for r in runs])
    if found:
        summary["breakdown"] = found
        print_breakdown(found, len(runs))
    summary["runs"] = [asdict(r) for r in runs]
    return summary


def burst(
    server: Server, headers: dict[str, str], pipeline: str, markers: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """``args.burst`` executions started at once."""
    if args.wait_quiet:
        quiet_gate(min(args.wait_quiet, QUIET_GATE_S))
    meter = CpuMeter(server.pid)
    runs, total = asyncio.run(
        run_burst(
            server.base,
            headers,
            pipeline,
            args.burst,
            markers,
            args.burst_poll_ms / 1000,
            args.timeout,
        )
    )
    cpu = meter.read()
    runs.sort(key=lambda r: r.posted_at)
    print(f"\n{args.burst} executions started at once (polled every {args.burst_poll_ms:.0f} ms):")
    print_runs(runs)
    statuses = [r.status for r in runs]
    firsts = present([r.first_step_s for r in runs])
    spans = present([r.steps_s for r in runs])
    summary: dict[str, Any] = {
        "n": args.burst,
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "all_steps_completed": all_completed(runs),
        "total_wall_s": total,
        "first_step_min_s": min(firsts) if firsts else None,
        "first_step_max_s": max(firsts) if firsts else None,
        "steps_span_median_s": median(spans) if spans else None,
        "poll_errors": sum(r.poll_errors for r in runs),
        "server_cpu_per_execution_s": cpu["server_cpu_s"] / args.burst,
        **cpu,
    }
    print(
        f"first POST -> last completion: {ms(total)} ms; statuses {summary['statuses']}; "
        f"{cores(cpu)}; server CPU {ms(summary['server_cpu_per_execution_s'])} ms per execution"
    )
    found = breakdown(server.db, [r.id for r in runs])
    if found:
        summary["breakdown"] = found
        print_breakdown(found, len(runs))
    summary["runs"] = [asdict(r) for r in runs]
    return summary


def main() -> int:
    args = parse_args()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": shlex.join([".venv/bin/python", *sys.argv]),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "source": describe_source(),
    }
    print(f"{report['date']}; {report['nproc']} CPUs, {report['cpu']}; Python {report['python']}")
    print(f"shipyard source: {report['source']}")
    background = wait_quiet(args.wait_quiet)
    report["other_load_before"] = background
    print(f"other load before start: {background:.2f} cores busy", flush=True)
    if background > QUIET:
        print("WARNING: the machine is not idle; figures will be high and noisy", flush=True)

    with tempfile.TemporaryDirectory(prefix="shipyard-ci-bench-") as tmp:
        workdir = Path(tmp)
        markers = workdir / "markers"
        markers.mkdir()
        repo = workdir / "repo"
        make_repository(repo)

        base = baseline(markers, args.baseline)
        args.baseline_separate_s = median(base["separate_sh_s"])
        report["baseline"] = {
            "repeat": args.baseline,
            "one_sh_median_s": median(base["one_sh_s"]),
            "separate_sh_median_s": args.baseline_separate_s,
            **base,
        }
        print(
            f"\nbaseline ({args.baseline} reps, median): the 20 commands in one sh "
            f"{ms(report['baseline']['one_sh_median_s'])} ms; as 20 separate sh "
            f"{ms(args.baseline_separate_s)} ms ({ms(args.baseline_separate_s / STEPS)} ms each)",
            flush=True,
        )

        report["servers"] = []
        for index, concurrency in enumerate(args.concurrency):
            server = Server(workdir, concurrency)
            entry: dict[str, Any] = {"worker_concurrency": concurrency}
            report["servers"].append(entry)
            if index and args.wait_quiet:
                entry["other_load_before"] = wait_quiet(args.wait_quiet)
            try:
                server.start()
                entry["pid"] = server.pid
                headers, pipeline = set_up(server.base, repo, markers)
                print(
                    f"\n== shipyard serve PID {server.pid}, "
                    f"SHIPYARD_WORKER_CONCURRENCY={concurrency} ==",
                    flush=True,
                )
                with httpx.Client(base_url=server.base, headers=headers, timeout=60.0) as client:
                    warm, _ = run_one(client, pipeline, markers, args.poll_ms / 1000, args.timeout)
                    entry["warmup"] = asdict(warm)
                    print(f"warm-up execution (clones the repository): {ms(warm.wall_s)} ms")
                    if index == 0:
                        entry["sequential"] = sequential(server, client, pipeline, markers, args)
                entry["burst"] = burst(server, headers, pipeline, markers, args)
                time.sleep(2.0)
                entry["idle_rss_kib_after"] = vm_rss_kib(server.pid)
                print(
                    f"idle VmRSS 2 s after the runs: {entry['idle_rss_kib_after'] / 1024:.1f} MiB"
                )
            except (RuntimeError, httpx.HTTPError) as exc:
                # e.g. a POST answered 500: report what was measured so far and go on.
                entry["error"] = str(exc)[:1000]
                print(f"\nERROR with this server: {entry['error']}", flush=True)
            finally:
                entry["server_log"] = server_log_errors(server.log_path)
                print(
                    f"server log: {entry['server_log']['error_lines']} ERROR lines, "
                    f"{entry['server_log']['database_is_locked']} 'database is locked'",
                    flush=True,
                )
                for line in entry["server_log"]["first_errors"]:
                    print(f"  {line[:160]}")
                server.stop()

    ok = print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


def print_summary(report: dict[str, Any]) -> bool:
    base = report["baseline"]
    if "sequential" not in report["servers"][0]:
        print("\nno sequential figures (see the errors above): targets not met")
        return False
    seq = report["servers"][0]["sequential"]
    per_step = seq["per_step_overhead_s"] * 1000
    first_med = (seq["first_step_median_s"] or 0) * 1000
    first_max = (seq["first_step_max_s"] or float("inf")) * 1000
    per_step_ok = per_step < PER_STEP_TARGET_MS and seq["all_steps_completed"]
    first_ok = first_max < FIRST_STEP_TARGET_MS
    rows = [
        ("baseline: the 20 commands in one `sh -c` (median)", f"{ms(base['one_sh_median_s'])} ms"),
        ("baseline: as 20 separate `sh -c` (median)", f"{ms(base['separate_sh_median_s'])} ms"),
        (
            f"Shipyard: POST -> seen completed, median of {seq['n']} (min / max)",
            f"{ms(seq['wall_median_s'])} ms ({ms(seq['wall_min_s'])} / {ms(seq['wall_max_s'])})",
        ),
        ("Shipyard: step 1 -> step 20 timestamps (median)", f"{ms(seq['steps_span_median_s'])} ms"),
        (
            "per-step overhead = (median wall - 20 separate sh) / 20",
            f"{per_step:.1f} ms",
            f"< {PER_STEP_TARGET_MS:.0f} ms",
            "yes" if per_step_ok else "NO",
        ),
        (
            "POST -> step 1 running, median / max",
            f"{first_med:.1f} / {first_max:.1f} ms",
            f"< {FIRST_STEP_TARGET_MS:.0f} ms",
            "yes" if first_ok else "NO",
        ),
    ]
    quiet = seq.get("quiet")
    if quiet:
        rows.append(
            (
                f"the same over the {quiet['n']} of {seq['n']} executions with other processes "
                f"< {QUIET_RUN} cores (information)",
                f"per step {ms(quiet['per_step_overhead_s'])} ms; POST -> step 1 "
                f"{ms(quiet['first_step_median_s'])} / {ms(quiet['first_step_max_s'])} ms",
            )
        )
    burst_ok = True
    for entry in report["servers"]:
        if "burst" not in entry:
            burst_ok = False
            rows.append((f"concurrency {entry['worker_concurrency']}", "failed", "", "NO"))
            continue
        b = entry["burst"]
        ratio = b["total_wall_s"] / seq["wall_median_s"]
        done = b["statuses"].get("completed", 0)
        met = done == b["n"] and b["all_steps_completed"]
        burst_ok = burst_ok and met
        rows.append(
            (
                f"{b['n']} at once, concurrency {entry['worker_concurrency']}: first POST -> last "
                f"completed",
                f"{ms(b['total_wall_s'])} ms = {ratio:.1f}x single; {done}/{b['n']} completed",
                "all complete",
                "yes" if met else "NO",
            )
        )
    for entry in report["servers"]:
        if "idle_rss_kib_after" not in entry:
            continue
        rows.append(
            (
                f"idle VmRSS after the runs, concurrency {entry['worker_concurrency']}",
                f"{entry['idle_rss_kib_after'] / 1024:.1f} MiB",
            )
        )
    print("\n| measure | value | target | met |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        cells = [*row, "", ""][:4]
        print("| " + " | ".join(cells) + " |")
    report["targets"] = {
        "per_step_overhead_ms": per_step,
        "per_step_met": per_step_ok,
        "first_step_median_ms": first_med,
        "first_step_max_ms": first_max,
        "first_step_met": first_ok,
        "burst_all_completed": burst_ok,
    }
    return per_step_ok and first_ok and burst_ok


if __name__ == "__main__":
    sys.exit(main())
