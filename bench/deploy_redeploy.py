"""Redeploy latency on the docker runtime through a real Caddy, side by side with a plain
``docker run`` of the same image.

What a user does to redeploy is press "redeploy": ``POST /api/v1/apps/{id}/deployments`` with
``{}``, the same unchanged commit, no ``force_rebuild``. Shipyard fetches the commit again, builds
it (every layer comes from the engine's cache: the image is already built), then starts,
health-checks and switches. That is what is timed and judged. Rolling back
(``POST /api/v1/apps/{id}/rollback``) is the other way to run an already-built image again: it
skips fetch and build, but it cannot target the live release (409 already_live), so it
alternates between the two newest releases; it is timed too, for information.

What it does, in one invocation:

1. starts ``shipyard serve`` (SHIPYARD_RUNTIME=docker, SQLite, its own Caddy on free loopback
   ports with plain HTTP, drain 0.5 s) and makes a local git repository of a tiny app that
   answers ``VERSION=v1 HOST=<its hostname> PID=..``: a container's hostname is its short id,
   so each answer names the container (the release instance) that served it. The manifest's
   health check is ``path: /``, ``interval_seconds: 1`` (the smallest allowed), threshold 1;
2. deploys it once (first build, untimed), tags the release image ``bench/redeploy-plain:<x>``
   for the baseline, and warms each path up once;
3. ``--runs`` times, one after the other: (a) the baseline: ``docker run -d --rm --init
   -e PORT=8000 -p 127.0.0.1:<free>:8000 <image>`` until ``GET /`` on that port answers 200
   (a new connection per poll, every ``--poll-ms``); (b) a redeploy: from just before the POST
   until ``GET /`` through Caddy (``Host: <app>.localhost``, a new connection per poll) is
   answered by a container other than the one that served before; then it waits for the
   deployment to be ``healthy`` and checks that the answering container is the one labelled with
   that deployment; (c) unless ``--no-rollback``, a rollback, timed the same way;
4. prints every run, the medians, each step's median duration (from the deployment's view),
   polls through Caddy that did not answer 200 during redeploys (should be 0), the ratio, and
   the target: median redeploy <= 2 x median plain run + one health interval (1 s).

Exit status 1 if the target is missed. Only 127.0.0.1 is contacted; the app is deleted, its
containers and images removed, and the server stopped (SIGTERM, then SIGKILL) on exit.

Run: ``.venv/bin/python bench/deploy_redeploy.py`` (about 2 minutes; ``--quick`` for 2 runs).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from deploy_common import (
    HEALTH_INTERVAL_S,
    CpuMeter,
    DeployServer,
    docker_cli,
    expect,
    field_of,
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

CONTAINER_PORT = 8000


@dataclass
class Timing:
    kind: str  # plain, redeploy, rollback
    seconds: float
    deployment_id: str | None = None
    steps: dict[str, float] = field(default_factory=dict)
    queue_s: float | None = None
    failed_polls: int = 0  # polls that did not get a 200 (through Caddy: should be 0)
    polls: int = 0
    other_cores: float | None = None
    verified: bool | None = None  # the new answer came from this deployment's container


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each kind (10)")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run: 2 runs")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="poll interval (20 ms)")
    parser.add_argument("--no-rollback", action="store_true", help="do not time rollbacks")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per deployment")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other processes to leave the CPUs idle first",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    args.runs = 2 if args.quick else max(1, min(args.runs, 50))
    args.poll_ms = max(5.0, min(args.poll_ms, 500.0))
    return args


def plain_run(image: str, poll: float, timeout: float) -> Timing:
    """``docker run`` of the image until it answers HTTP on its published port."""
    port = free_port()
    start = time.monotonic()
    done = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--init",
            "-e",
            f"PORT={CONTAINER_PORT}",
            "-p",
            f"127.0.0.1:{port}:{CONTAINER_PORT}",
            image,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    container = done.stdout.strip()
    polls = failed = 0
    try:
        deadline = start + timeout
        while True:
            polls += 1
            try:
                with httpx.Client(timeout=2.0) as probe:
                    if probe.get(f"http://127.0.0.1:{port}/").status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            failed += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"plain container {container[:12]} never answered")
            time.sleep(poll)
        elapsed = time.monotonic() - start
    finally:
        docker_cli("rm", "-f", container)
    return Timing("plain", elapsed, polls=polls, failed_polls=failed)


def switch_to_new(
    server: DeployServer,
    client: httpx.Client,
    app_id: str,
    host: str,
    kind: str,
    poll: float,
    timeout: float,
) -> Timing:
    """POST a redeploy or a rollback; time until Caddy's answer comes from another container."""
    old = field_of(proxy_get(server.proxy_port, host), "HOST")
    if old is None:
        raise RuntimeError(f"{host} does not answer through Caddy before the {kind}")
    meter = CpuMeter(server.pid)
    start = time.monotonic()
    if kind == "redeploy":
        response = client.post(f"/api/v1/apps/{app_id}/deployments", json={})
    else:
        response = client.post(f"/api/v1/apps/{app_id}/rollback")
    deployment_id = str(expect(response, 202)["deployment_id"])
    polls = failed = 0
    deadline = start + timeout
    while True:
        polls += 1
        now_host = field_of(proxy_get(server.proxy_port, host), "HOST")
        if now_host is None:
            failed += 1
        elif now_host != old:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} {deployment_id}: no new container answered in {timeout} s")
        time.sleep(poll)
    elapsed = time.monotonic() - start
    other = meter.read()["other_cores"]
    view, _ = wait_deployment(client, app_id, deployment_id, timeout)
    if view["status"] != "healthy":
        raise RuntimeError(f"{kind} {deployment_id} ended {view['status']}: {view['last_error']}")
    labelled = docker_cli(
        "ps", "-q", "--no-trunc", "--filter", f"label=shipyard.deployment={deployment_id}"
    ).split()
    return Timing(
        kind,
        elapsed,
        deployment_id=deployment_id,
        steps=step_seconds(view),
        queue_s=queue_seconds(view),
        failed_polls=failed,
        polls=polls,
        other_cores=other,
        verified=any(cid.startswith(now_host) for cid in labelled),
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(timings: list[Timing]) -> dict[str, Any]:
    seconds = [t.seconds for t in timings]
    steps: dict[str, list[float]] = {}
    for t in timings:
        for name, value in t.steps.items():
            steps.setdefault(name, []).append(value)
    queue = [t.queue_s for t in timings if t.queue_s is not None]
    return {
        "n": len(timings),
        "median_s": median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "steps_median_s": {name: median(v) for name, v in steps.items()},
        "queue_median_s": median(queue) if queue else None,
        "failed_polls": sum(t.failed_polls for t in timings),
        "polls": sum(t.polls for t in timings),
        "all_verified": all(t.verified is not False for t in timings),
    }


def print_runs(timings: list[Timing]) -> None:
    print(
        f"{'#':>3} {'kind':>9} {'seconds':>8} {'non-200 polls':>13} {'other cores':>11}  steps (s)"
    )
    for i, t in enumerate(timings, 1):
        other = "" if t.other_cores is None else f"{t.other_cores:.2f}"
        steps = " ".join(f"{k}={v:.2f}" for k, v in t.steps.items())
        print(f"{i:>3} {t.kind:>9} {t.seconds:8.3f} {t.failed_polls:>13} {other:>11}  {steps}")


def run(args: argparse.Namespace, report: dict[str, Any]) -> bool:
    poll = args.poll_ms / 1000
    with tempfile.TemporaryDirectory(prefix="shipyard-redeploy-bench-") as tmp:
        workdir = Path(tmp)
        name = f"bench-redeploy-{secrets.token_hex(3)}"
        plain_tag = f"bench/redeploy-plain:{secrets.token_hex(4)}"
        make_repository(workdir / "repo", "v1")
        server = DeployServer(workdir, "docker", "redeploy")
        try:
            server.start()
            report["server_settings"] = server.settings_text()
            print(f"server: {report['server_settings']}", flush=True)
            host = f"{name}.localhost"
            with server.client() as client:
                app_id = server.create_app(client, name, workdir / "repo")
                start = time.monotonic()
                first = str(
                    expect(client.post(f"/api/v1/apps/{app_id}/deployments", json={}), 202)[
                        "deployment_id"
                    ]
                )
                view, seen = wait_deployment(client, app_id, first, args.timeout)
                if view["status"] != "healthy":
                    raise RuntimeError(f"first deployment failed: {view['last_error']}")
                report["first_deploy_s"] = seen - start
                print(f"first deployment (build from the base image): {seen - start:.2f} s")
                image = docker_cli(
                    "ps", "--format", "{{.Image}}", "--filter", f"label=shipyard.deployment={first}"
                )
                docker_cli("tag", image, plain_tag)
                report["image"] = image
                print(f"release image {image}, tagged {plain_tag} for the plain runs", flush=True)
                # Warm-up (untimed): page cache, the engine's layer cache, Caddy's upstreams.
                plain_run(plain_tag, poll, args.timeout)
                switch_to_new(server, client, app_id, host, "redeploy", poll, args.timeout)
                timings: list[Timing] = []
                for i in range(args.runs):
                    done = len(timings)
                    timings.append(plain_run(plain_tag, poll, args.timeout))
                    timings.append(
                        switch_to_new(server, client, app_id, host, "redeploy", poll, args.timeout)
                    )
                    if not args.no_rollback:
                        timings.append(
                            switch_to_new(
                                server, client, app_id, host, "rollback", poll, args.timeout
                            )
                        )
                    print(
                        "  run "
                        + f"{i + 1}: "
                        + ", ".join(f"{t.kind} {t.seconds:.3f} s" for t in timings[done:]),
                        flush=True,
                    )
        finally:
            server.stop()
            docker_cli("rmi", "-f", plain_tag)
            report["server_log"] = server_log_errors(server.log_path)
    print()
    print_runs(timings)
    kinds = {k: [t for t in timings if t.kind == k] for k in ("plain", "redeploy", "rollback")}
    summary = {k: summarize(v) for k, v in kinds.items() if v}
    report["summary"] = summary
    report["runs"] = [asdict(t) for t in timings]
    plain, redeploy = summary["plain"]["median_s"], summary["redeploy"]["median_s"]
    limit = 2 * plain + HEALTH_INTERVAL_S
    met = redeploy <= limit and summary["redeploy"]["all_verified"]
    report["target"] = {"limit_s": limit, "ratio": redeploy / plain, "met": met}
    print("\nmedian step durations (s, from GET .../deployments/{id}):")
    for kind in ("redeploy", "rollback"):
        if kind in summary:
            s = summary[kind]
            steps = " ".join(f"{k}={v:.3f}" for k, v in s["steps_median_s"].items())
            print(f"  {kind}: queue={s['queue_median_s'] or 0:.3f} {steps}")
    print(f"\n| measure (median of {args.runs}, min-max) | seconds |")
    print("| --- | --- |")
    for kind, label in (
        ("plain", "plain `docker run` until it answers HTTP"),
        ("redeploy", "redeploy (POST .../deployments, same commit) until Caddy serves it"),
        ("rollback", "rollback (POST .../rollback) until Caddy serves it (information)"),
    ):
        if kind in summary:
            s = summary[kind]
            print(f"| {label} | {s['median_s']:.3f} ({s['min_s']:.3f}-{s['max_s']:.3f}) |")
    print(
        f"\nratio redeploy / plain: {redeploy / plain:.2f}; target: redeploy <= 2 x plain + "
        f"health interval ({HEALTH_INTERVAL_S:g} s) = {limit:.3f} s -> "
        f"{'PASS' if met else 'FAIL'}"
    )
    print(
        f"polls through Caddy without a 200 during redeploys: "
        f"{summary['redeploy']['failed_polls']} of {summary['redeploy']['polls']}; answers "
        f"from the deployment's own container: {summary['redeploy']['all_verified']}"
    )
    log = report["server_log"]
    print(f"server log: {log['error_lines']} ERROR lines")
    for line in log["first_errors"]:
        print(f"  {line[:160]}")
    return bool(met)


def main() -> int:
    args = parse_args()
    report: dict[str, Any] = {}
    print_machine(report)
    if not has_docker():
        print("no Docker Engine answers: this benchmark needs the docker runtime")
        return 1
    background = wait_quiet(args.wait_quiet)
    report["other_load_before"] = background
    print(f"other load before start: {background:.2f} cores busy", flush=True)
    ok = run(args, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
