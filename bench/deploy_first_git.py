"""First deployment of a small app from a local git repository, build included, on the docker
runtime and on the process runtime: seconds in total and per step.

What it does, in one invocation, for each runtime of ``--runtimes`` (docker,process):

1. starts ``shipyard serve`` (SHIPYARD_RUNTIME=<runtime>, SQLite, its own Caddy on free loopback
   ports with plain HTTP);
2. ``--runs`` times: makes a fresh git repository of the tiny app of deploy_common.py (its own
   version string, so no earlier build can be reused: the docker COPY layer and the process
   build directory are new), with ``release: echo migrating`` and a health check on ``/``
   (interval 1 s, threshold 1) in its shipyard.yaml, creates an app for it, and times from just
   before ``POST /api/v1/apps/{id}/deployments`` until (a) ``GET .../deployments/{id}`` says
   ``healthy`` (polled every ``--poll-ms``) and (b) the app answers through Caddy
   (``Host: <app>.localhost``);
3. reads the steps of each deployment (``GET .../deployments/{id}``: started/finished per step)
   and prints each run, the median per step, the time in the queue and between steps, and, side
   by side, a baseline of the same work done by hand: ``git clone`` of the repository, then for
   docker ``docker build`` of the same generated Dockerfile and ``docker run`` until it answers
   HTTP, for process ``python3 -m venv`` and ``python3 app.py`` until it answers HTTP.

There is no target: the figures describe where a first deployment spends its time. Only
127.0.0.1 is contacted; apps are deleted, their containers and images removed, the servers
stopped on exit.

Run: ``.venv/bin/python bench/deploy_first_git.py`` (about 2 minutes; ``--quick`` for one run
per runtime).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from deploy_common import (
    MANIFEST,
    CpuMeter,
    DeployServer,
    docker_cli,
    expect,
    free_port,
    has_docker,
    make_repository,
    print_machine,
    proxy_get,
    queue_seconds,
    server_log_errors,
    step_seconds,
    wait_deployment,
    wait_quiet,
)

RELEASE = "release: echo migrating\n"
BASE_IMAGE = "local/python:3.11"
# What Shipyard generates for this app (drivers/runtime/docker_build.py), for the baseline.
DOCKERFILE = """FROM local/python:3.11
WORKDIR /app
ENV PYTHONUNBUFFERED=1
COPY . /app
CMD ["sh", "-c", "exec python3 app.py"]
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="first deployments per runtime (3)")
    parser.add_argument("--runtimes", default="docker,process", help="docker,process")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run: 1 per runtime")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="poll interval (20 ms)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per deployment")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other processes to leave the CPUs idle first",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    args.runs = 1 if args.quick else max(1, min(args.runs, 20))
    args.runtimes = [r for r in args.runtimes.split(",") if r in ("docker", "process")]
    return args


def wait_http(url: str, poll: float, timeout: float, host: str | None = None) -> float:
    """Poll until ``url`` answers 200 (a new connection each time); time.monotonic() then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with httpx.Client(timeout=2.0) as client:
                headers = {"Host": host} if host else {}
                if client.get(url, headers=headers).status_code == 200:
                    return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{url} never answered")


def baseline(runtime: str, repo: Path, workdir: Path, poll: float) -> dict[str, float]:
    """The same work by hand: clone, build, run until it answers HTTP (seconds per part)."""
    out: dict[str, float] = {}
    dest = workdir / f"by-hand-{secrets.token_hex(3)}"
    t = time.monotonic()
    subprocess.run(
        ["git", "clone", "-q", repo.as_uri(), str(dest)], check=True, timeout=120, env=os.environ
    )
    out["clone"] = time.monotonic() - t
    port = free_port()
    if runtime == "docker":
        tag = f"bench/first-by-hand:{secrets.token_hex(4)}"
        (dest / ".dockerignore").write_text(".git\n")
        (dest / "Dockerfile.bench").write_text(DOCKERFILE)
        t = time.monotonic()
        subprocess.run(
            ["docker", "build", "-q", "-f", "Dockerfile.bench", "-t", tag, "."],
            cwd=dest,
            check=True,
            capture_output=True,
            timeout=300,
        )
        out["build"] = time.monotonic() - t
        t = time.monotonic()
        container = subprocess.run(
            [
                *("docker", "run", "-d", "--rm", "--init", "-e", "PORT=8000"),
                *("-p", f"127.0.0.1:{port}:8000", tag),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.strip()
        try:
            out["run_until_http"] = wait_http(f"http://127.0.0.1:{port}/", poll, 60) - t
        finally:
            docker_cli("rm", "-f", container)
            docker_cli("rmi", "-f", tag)
    else:
        t = time.monotonic()
        subprocess.run(["python3", "-m", "venv", ".venv"], cwd=dest, check=True, timeout=300)
        out["build"] = time.monotonic() - t
        t = time.monotonic()
        proc = subprocess.Popen(
            [str(dest / ".venv/bin/python"), "app.py"],
            cwd=dest,
            env={"PATH": "/usr/bin:/bin", "PORT": str(port)},
        )
        try:
            out["run_until_http"] = wait_http(f"http://127.0.0.1:{port}/", poll, 60) - t
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    out["total"] = out["clone"] + out["build"] + out["run_until_http"]
    shutil.rmtree(dest, ignore_errors=True)
    return out


def first_deploy(
    server: DeployServer, client: httpx.Client, workdir: Path, poll: float, timeout: float
) -> dict[str, Any]:
    name = f"bench-first-{secrets.token_hex(3)}"
    repo = workdir / name
    make_repository(repo, f"v-{name}", {"shipyard.yaml": RELEASE + MANIFEST})
    app_id = server.create_app(client, name, repo)
    meter = CpuMeter(server.pid)
    start = time.monotonic()
    deployment_id = str(
        expect(client.post(f"/api/v1/apps/{app_id}/deployments", json={}), 202)["deployment_id"]
    )
    view, healthy_at = wait_deployment(client, app_id, deployment_id, timeout, poll)
    if view["status"] != "healthy":
        raise RuntimeError(f"deployment {deployment_id} failed: {view['last_error']}")
    deadline = time.monotonic() + 30
    while proxy_get(server.proxy_port, f"{name}.localhost") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} does not answer through Caddy")
        time.sleep(poll)
    served_at = time.monotonic()
    cpu = meter.read()
    steps = step_seconds(view)
    marks = sorted(
        (s["started_at_unix_ms"], s["finished_at_unix_ms"])
        for s in view["steps"]
        if s["started_at_unix_ms"] is not None
    )
    gaps = sum(max(0, b[0] - a[1]) for a, b in itertools.pairwise(marks)) / 1000
    return {
        "app": name,
        "deployment_id": deployment_id,
        "to_healthy_s": healthy_at - start,
        "to_served_s": served_at - start,
        "queue_s": queue_seconds(view),
        "between_steps_s": gaps,
        "created_to_last_step_s": (marks[-1][1] - view["created_at_unix_ms"]) / 1000,
        "steps": steps,
        "other_cores": cpu["other_cores"],
        "server_cores": cpu["server_cores"],
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_runtime(runtime: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    poll = args.poll_ms / 1000
    server = DeployServer(workdir, runtime, f"first-{runtime}")
    result: dict[str, Any] = {"runtime": runtime, "runs": [], "baseline": []}
    try:
        server.start()
        result["server_settings"] = server.settings_text()
        print(f"\n== runtime {runtime}: {result['server_settings']}", flush=True)
        with server.client() as client:
            for i in range(args.runs):
                run = first_deploy(server, client, workdir, poll, args.timeout)
                result["runs"].append(run)
                repo = workdir / run["app"]
                result["baseline"].append(baseline(runtime, repo, workdir, poll))
                steps = " ".join(f"{k}={v:.2f}" for k, v in run["steps"].items())
                b = result["baseline"][-1]
                print(
                    f"  run {i + 1}: healthy {run['to_healthy_s']:.2f} s, served by Caddy "
                    f"{run['to_served_s']:.2f} s (other cores {run['other_cores']:.2f}); {steps}; "
                    f"by hand {b['total']:.2f} s",
                    flush=True,
                )
    finally:
        server.stop()
        result["server_log"] = server_log_errors(server.log_path)
    return result


def print_summary(results: list[dict[str, Any]]) -> None:
    names: list[str] = []
    for r in results:
        for run in r["runs"]:
            names += [n for n in run["steps"] if n not in names]
    print("\n| measure (median, s) | " + " | ".join(r["runtime"] for r in results) + " |")
    print("| --- |" + " ---: |" * len(results))

    def row(label: str, values: list[list[float]]) -> None:
        cells = [f"{median(v):.3f}" if v else "-" for v in values]
        print(f"| {label} | " + " | ".join(cells) + " |")

    row(
        "POST -> deployment seen healthy", [[x["to_healthy_s"] for x in r["runs"]] for r in results]
    )
    row(
        "POST -> app served through Caddy", [[x["to_served_s"] for x in r["runs"]] for r in results]
    )
    row("queue (created -> first step)", [[x["queue_s"] or 0 for x in r["runs"]] for r in results])
    for name in names:
        row(
            f"step {name}",
            [[x["steps"][name] for x in r["runs"] if name in x["steps"]] for r in results],
        )
    row("between steps (sum)", [[x["between_steps_s"] for x in r["runs"]] for r in results])
    for part in ("clone", "build", "run_until_http", "total"):
        row(f"by hand: {part}", [[b[part] for b in r["baseline"]] for r in results])
    for r in results:
        runs = r["runs"]
        print(
            f"{r['runtime']}: min-max to served {min(x['to_served_s'] for x in runs):.2f}-"
            f"{max(x['to_served_s'] for x in runs):.2f} s over {len(runs)} runs; other processes "
            f"{min(x['other_cores'] for x in runs):.2f}-{max(x['other_cores'] for x in runs):.2f}"
            f" cores; server log {r['server_log']['error_lines']} ERROR lines"
        )


def main() -> int:
    args = parse_args()
    report: dict[str, Any] = {}
    print_machine(report)
    if "docker" in args.runtimes and not has_docker():
        print("no Docker Engine answers: skipping the docker runtime")
        args.runtimes.remove("docker")
    background = wait_quiet(args.wait_quiet)
    report["other_load_before"] = background
    print(f"other load before start: {background:.2f} cores busy", flush=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shipyard-first-bench-") as tmp:
        for runtime in args.runtimes:
            results.append(run_runtime(runtime, args, Path(tmp)))
    report["results"] = results
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
