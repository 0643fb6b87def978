"""Log throughput and fan-out: a build that prints ``--lines`` (100,000) lines, streamed to
``--viewers`` (20) SSE clients of ``GET /api/v1/apps/{id}/logs/stream``, side by side with the
same printer read straight from a pipe.

Two phases, each a first deployment of its own app, because one printer cannot show both
targets: a printer faster than the engine piles lines up in buffers, so its delays measure the
backlog, not the fan-out.

- **throughput**: the printer prints as fast as it can; lines/s stored = N / (the first line's
  print time -> the first viewer holding all N lines). Lines are published only once stored, so
  this bounds the store rate from below.
- **delay**: the printer paces itself at ``--rate`` lines/s (20,000: the throughput target);
  the delay of each line from print to arrival at each viewer, p50/p99/max over every line of
  every viewer, and the worst viewer's p99. If the engine keeps up with the target rate, delays
  stay small; if not, they grow with the backlog.

What it does, in one invocation:

1. baseline: runs the printer (``python3 printer.py N RATE``: N lines ``L<i> <time.time()>``,
   one write per line, unbuffered) as an asyncio subprocess and reads its output line by line,
   the way the runtimes read a build: lines/s and delays, for each phase's rate;
2. starts ``shipyard serve`` (SQLite, its own Caddy on free loopback ports) with
   SHIPYARD_RUNTIME=process (default; ``--runtime docker`` prints from a Dockerfile ``RUN``
   instead, after ``COPY . /app`` so the layer is never cached). Process runtime: the
   repository's manifest says ``build: python3 printer.py N RATE`` and ``start: python3
   web.py`` (no Python marker file, so no venv is made: the build is the printer alone);
3. per phase: opens the viewers (one asyncio process, httpx), POSTs the deployment; each viewer
   parses the ``logs`` events, takes every ``L<i> <t>`` line, records ``time.time()`` on
   arrival minus ``t``, and stops once it has every line (or at ``--timeout``). Missing and
   duplicated lines are counted; ``GET .../deployments/{id}/logs`` must hold all N lines;
4. prints both phases, the cores used by the server, this client and other processes, and the
   targets: >= 20,000 lines/s stored (throughput phase) and p99 delay < 1 s (delay phase).

Exit status 1 if a target is missed or a line is lost. Only 127.0.0.1 is contacted; the apps
are deleted and the server stopped on exit; every wait is bounded.

Run: ``.venv/bin/python bench/log_stream.py`` (about a minute; ``--quick`` prints 10,000 lines).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from deploy_common import (
    MANIFEST,
    CpuMeter,
    DeployServer,
    expect,
    has_docker,
    make_repository,
    print_machine,
    server_log_errors,
    step_seconds,
    wait_deployment,
    wait_quiet,
)

RATE_TARGET = 20_000.0
P99_TARGET_S = 1.0
PRINTER = """import sys, time
n, rate = int(sys.argv[1]), float(sys.argv[2])
write = sys.stdout.write
start = time.time()
for i in range(n):
    if rate and i % 100 == 0:
        ahead = start + i / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    write(f"L{i} {time.time():.6f}\\n")
sys.stdout.flush()
"""
DOCKERFILE = """FROM local/python:3.11
WORKDIR /app
COPY . /app
RUN python3 -u printer.py {lines} {rate}
CMD ["sh", "-c", "exec python3 web.py"]
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines printed (100000)")
    parser.add_argument("--viewers", type=int, default=20, help="SSE clients (20)")
    parser.add_argument(
        "--rate", type=float, default=RATE_TARGET, help="lines/s of the delay phase (20000)"
    )
    parser.add_argument("--runtime", choices=("process", "docker"), default="process")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run: 10,000 lines")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for everything")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other processes to leave the CPUs idle first",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.lines = 10_000
    args.lines = max(10, min(args.lines, 2_000_000))
    args.viewers = max(1, min(args.viewers, 200))
    return args


def percentile(ordered: list[float] | array.array[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Viewer:
    n: int
    seen: bytearray = field(init=False)
    delays: array.array[float] = field(default_factory=lambda: array.array("d"))
    distinct: int = 0
    duplicates: int = 0
    frames: int = 0
    done_at: float | None = None  # time.time() when it had every line
    first_stamp: float = float("inf")  # the earliest print time among the lines it got
    error: str | None = None

    def __post_init__(self) -> None:
        self.seen = bytearray(self.n)

    def take(self, frame: bytes, now: float) -> None:
        for line in frame.split(b"\n"):
            if not line.startswith(b"data: "):
                continue
            self.frames += 1
            for text in json.loads(line[6:])["logs"].split("\n"):
                if not text.startswith("L"):
                    continue
                index, _, stamp = text[1:].partition(" ")
                try:
                    i, t = int(index), float(stamp)
                except ValueError:
                    continue
                if not 0 <= i < self.n:
                    continue
                if self.seen[i]:
                    self.duplicates += 1
                    continue
                self.seen[i] = 1
                self.distinct += 1
                self.delays.append(now - t)
                self.first_stamp = min(self.first_stamp, t)
        if self.distinct == self.n and self.done_at is None:
            self.done_at = now


async def watch(
    client: httpx.AsyncClient, url: str, viewer: Viewer, deadline: float, ready: asyncio.Event
) -> None:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                viewer.error = f"HTTP {response.status_code}"
                return
            ready.set()
            buffer = b""
            async for chunk in response.aiter_raw():
                now = time.time()
                buffer += chunk
                while (end := buffer.find(b"\n\n")) >= 0:
                    frame, buffer = buffer[:end], buffer[end + 2 :]
                    viewer.take(frame, now)
                if viewer.done_at is not None or time.monotonic() > deadline:
                    return
    except (httpx.HTTPError, ValueError) as exc:
        viewer.error = f"{exc.__class__.__name__}: {exc}"


async def baseline(repo: Path, lines: int, rate: float) -> dict[str, float]:
    """The printer read straight from a pipe, line by line (what the runtime's reader does)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        str(repo / "printer.py"),
        str(lines),
        str(rate),
        stdout=asyncio.subprocess.PIPE,
        limit=1024 * 1024,
    )
    assert proc.stdout is not None
    delays: list[float] = []
    first = last = 0.0
    while raw := await proc.stdout.readline():
        now = time.time()
        stamp = float(raw.split(b" ", 1)[1])
        first = first or stamp
        last = now
        delays.append(now - stamp)
    await proc.wait()
    delays.sort()
    return {
        "lines_per_s": lines / (last - first),
        "p50_s": percentile(delays, 0.5),
        "p99_s": percentile(delays, 0.99),
        "max_s": delays[-1],
    }


async def stream(
    server: DeployServer, app_id: str, args: argparse.Namespace
) -> tuple[list[Viewer], str, dict[str, float]]:
    deadline = time.monotonic() + args.timeout
    viewers = [Viewer(args.lines) for _ in range(args.viewers)]
    limits = httpx.Limits(max_connections=args.viewers + 5)
    timeout = httpx.Timeout(30.0, read=60.0)
    url = f"/api/v1/apps/{app_id}/logs/stream"
    async with httpx.AsyncClient(
        base_url=server.base, headers=server.headers, limits=limits, timeout=timeout
    ) as client:
        ready = [asyncio.Event() for _ in viewers]
        tasks = [
            asyncio.create_task(watch(client, url, v, deadline, r))
            for v, r in zip(viewers, ready, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
        meter = CpuMeter(server.pid)
        response = await client.post(f"/api/v1/apps/{app_id}/deployments", json={})
        deployment_id = str(expect(response, 202)["deployment_id"])
        await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
        cpu = meter.read()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return viewers, deployment_id, cpu


def stored_lines(server: DeployServer, app_id: str, deployment_id: str) -> int:
    """Printer lines in the deployment's stored log (read in pages of 100,000)."""
    count, after = 0, 0
    with server.client(timeout=120) as client:
        while True:
            text = client.get(
                f"/api/v1/apps/{app_id}/deployments/{deployment_id}/logs", params={"after": after}
            ).json()["logs"]
            lines = text.split("\n") if text else []
            count += sum(1 for line in lines if line.startswith("L") and " " in line)
            if len(lines) < 100_000:
                return count
            after += len(lines)


def report_figures(
    args: argparse.Namespace, viewers: list[Viewer], cpu: dict[str, float], first_print: float
) -> dict[str, Any]:
    delays: array.array[float] = array.array("d")
    worst_p99 = 0.0
    for v in viewers:
        ordered = sorted(v.delays)
        worst_p99 = max(worst_p99, percentile(ordered, 0.99))
        delays.extend(v.delays)
    ordered_all = sorted(delays)
    done = [v.done_at for v in viewers if v.done_at is not None]
    stored_rate = args.lines / (min(done) - first_print) if done else 0.0
    return {
        "viewers_complete": len(done),
        "lines_per_s_stored": stored_rate,
        "all_viewers_done_s": (max(done) - first_print) if len(done) == len(viewers) else None,
        "delay_p50_s": percentile(ordered_all, 0.5),
        "delay_p99_s": percentile(ordered_all, 0.99),
        "delay_max_s": ordered_all[-1] if ordered_all else float("nan"),
        "worst_viewer_p99_s": worst_p99,
        "duplicates": sum(v.duplicates for v in viewers),
        "missing": sum(args.lines - v.distinct for v in viewers),
        "frames_per_viewer": sum(v.frames for v in viewers) / len(viewers),
        "errors": [v.error for v in viewers if v.error],
        # Load-independent: the server's CPU (its children, the printer among them, included).
        "server_cpu_us_per_line": cpu["server_cpu_s"] / args.lines * 1e6,
        **cpu,
    }


def phase_files(args: argparse.Namespace, rate: float) -> dict[str, str]:
    files = {"printer.py": PRINTER}
    if args.runtime == "docker":
        files["Dockerfile"] = DOCKERFILE.format(lines=args.lines, rate=rate)
    else:
        files["shipyard.yaml"] = (
            f"build: python3 printer.py {args.lines} {rate:g}\nstart: python3 web.py\n" + MANIFEST
        )
    return files


def run_phase(
    server: DeployServer, workdir: Path, args: argparse.Namespace, phase: str, rate: float
) -> dict[str, Any]:
    name = f"bench-logs-{phase}-{secrets.token_hex(3)}"
    repo = workdir / name
    make_repository(repo, f"v-{name}", phase_files(args, rate), app_file="web.py")
    base = asyncio.run(baseline(repo, args.lines, rate))
    with server.client() as client:
        app_id = server.create_app(client, name, repo)
    viewers, deployment_id, cpu = asyncio.run(stream(server, app_id, args))
    with server.client() as client:
        view, _ = wait_deployment(client, app_id, deployment_id, args.timeout)
    first_print = min((v.first_stamp for v in viewers), default=float("inf"))
    result = {
        "phase": phase,
        "rate": rate,
        "baseline": base,
        "deployment": {"status": view["status"], "steps": step_seconds(view)},
        "stored_printer_lines": stored_lines(server, app_id, deployment_id),
        **report_figures(args, viewers, cpu, first_print),
    }
    result["complete"] = (
        result["viewers_complete"] == args.viewers
        and result["missing"] == 0
        and result["stored_printer_lines"] == args.lines
    )
    steps = " ".join(f"{k}={v:.2f}" for k, v in result["deployment"]["steps"].items())
    print(
        f"\n{phase} phase (printer {'unpaced' if not rate else f'paced at {rate:,.0f} lines/s'}):"
        f"\n  baseline, the printer read from a pipe: {base['lines_per_s']:,.0f} lines/s; delay "
        f"p50 {base['p50_s'] * 1000:.1f} ms, p99 {base['p99_s'] * 1000:.1f} ms, max "
        f"{base['max_s'] * 1000:.1f} ms"
        f"\n  deployment {view['status']}; steps (s): {steps}"
        f"\n  cores busy while streaming ({result['seconds']:.1f} s): server "
        f"{result['server_cores']:.2f} (event-loop thread {result['server_loop_cores']:.2f}), "
        f"this client {result['client_cores']:.2f}, other processes {result['other_cores']:.2f}; "
        f"server CPU {result['server_cpu_us_per_line']:.1f} us per line"
        f"\n  viewers complete {result['viewers_complete']}/{args.viewers}; lines missing "
        f"{result['missing']}, duplicated {result['duplicates']}; frames per viewer "
        f"{result['frames_per_viewer']:.0f}; stored printer lines "
        f"{result['stored_printer_lines']}/{args.lines}; errors {result['errors'][:3]}"
        f"\n  lines/s stored {result['lines_per_s_stored']:,.0f}; delay p50/p99/max "
        f"{result['delay_p50_s'] * 1000:.0f}/{result['delay_p99_s'] * 1000:.0f}/"
        f"{result['delay_max_s'] * 1000:.0f} ms",
        flush=True,
    )
    return result


def run(args: argparse.Namespace, report: dict[str, Any]) -> bool:
    phases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shipyard-logstream-bench-") as tmp:
        server = DeployServer(Path(tmp), args.runtime, "logs")
        try:
            server.start()
            report["server_settings"] = server.settings_text()
            print(f"server: {report['server_settings']}", flush=True)
            for phase, rate in (("throughput", 0.0), ("delay", args.rate)):
                phases.append(run_phase(server, Path(tmp), args, phase, rate))
        finally:
            server.stop()
            report["server_log"] = server_log_errors(server.log_path)
    report["phases"] = phases
    fast, paced = phases
    rate_ok = fast["lines_per_s_stored"] >= RATE_TARGET
    p99_ok = paced["delay_p99_s"] < P99_TARGET_S
    complete = fast["complete"] and paced["complete"]

    def delays(r: dict[str, Any]) -> str:
        return (
            f"{r['delay_p50_s'] * 1000:.0f} / {r['delay_p99_s'] * 1000:.0f} / "
            f"{r['delay_max_s'] * 1000:.0f} ms (worst viewer p99 "
            f"{r['worst_viewer_p99_s'] * 1000:.0f})"
        )

    print(f"\n| measure ({args.lines:,} lines, {args.viewers} viewers) | value | target | met |")
    print("| --- | --- | --- | --- |")
    print(
        f"| baseline: unpaced printer read from a pipe | "
        f"{fast['baseline']['lines_per_s']:,.0f} lines/s | | |"
    )
    print(
        f"| throughput phase: lines/s stored (N / first print -> first viewer complete) | "
        f"{fast['lines_per_s_stored']:,.0f} | >= {RATE_TARGET:,.0f} | "
        f"{'yes' if rate_ok else 'NO'} |"
    )
    print(f"| throughput phase: delay p50 / p99 / max (backlog) | {delays(fast)} | | |")
    print(
        f"| delay phase ({args.rate:,.0f} lines/s): delay print -> viewer, p50 / p99 / max | "
        f"{delays(paced)} | p99 < {P99_TARGET_S * 1000:.0f} ms | {'yes' if p99_ok else 'NO'} |"
    )
    print(
        f"| delay phase: lines/s stored | {paced['lines_per_s_stored']:,.0f} "
        f"(printer {paced['baseline']['lines_per_s']:,.0f} from a pipe) | | |"
    )
    print(f"| every viewer got every line once; all stored | {complete} | yes | |")
    log = report["server_log"]
    print(f"server log: {log['error_lines']} ERROR lines")
    for line in log["first_errors"]:
        print(f"  {line[:160]}")
    return rate_ok and p99_ok and complete


def main() -> int:
    args = parse_args()
    report: dict[str, Any] = {}
    print_machine(report)
    if args.runtime == "docker" and not has_docker():
        print("no Docker Engine answers: use --runtime process")
        return 1
    background = wait_quiet(args.wait_quiet)
    report["other_load_before"] = background
    print(f"other load before start: {background:.2f} cores busy", flush=True)
    ok = run(args, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
