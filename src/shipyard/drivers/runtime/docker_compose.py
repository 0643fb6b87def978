"""Compose projects, one per release: the repository's compose file rewritten so that a new
release's project can start beside the live one, and kept so that it can start again (rollback).

The rewrite, from what `docker-compose config` resolves:
- services that `build:` get an image tag of the release (`shipyard/<app>-<service>:<release>`),
  so the kept file starts the very images that were built, without the checkout;
- published ports become loopback ports Docker picks (`127.0.0.1::<port>`): two projects cannot
  both bind a fixed host port, and the proxy is the way in; the web service always publishes its
  port;
- every service gets `restart: unless-stopped` and `init: true` unless it sets them;
- named volumes get a name of the app (`shipyard_<app>_<volume>`) instead of one of the project,
  so every release of the app mounts the same data;
- the web service gets `PORT` and the app's env vars, by name only: docker-compose takes their
  values from its environment when it starts the services, so they are not written to the file
  (nor are the values of any service's `KEY: ${KEY}` entries). A value interpolated into another
  string (`postgres://u:${PASSWORD}@db`) is in the kept file, which only its owner can read.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipyard.drivers.runtime.base import LogFn
from shipyard.drivers.runtime.docker_build import (
    compose_argv,
    compose_config,
    compose_env,
    inside,
)
from shipyard.errors import Invalid, NotFound

RUN_FILE = "compose.yml"
BUILD_FILE = ".shipyard.compose.build.yml"
_IMAGE_PART = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class ComposePlan:
    """What a release's compose project is: its web service and port, and the rewritten files."""

    project: str
    service: str
    port: int
    build_text: str  # with the build sections: for `docker-compose build`
    run_text: str  # images only: for `up`, now and at a rollback
    images: list[str] = field(default_factory=list)  # the images this release builds
    notes: list[str] = field(default_factory=list)  # what the rewrite changed, for the log


def project_name(app: str, release_id: str) -> str:
    """The release's compose project: unique per release, so old and new run side by side."""
    return f"shipyard-{app}-{release_id.replace('-', '')}"


def release_image(app: str, service: str, release_id: str) -> str:
    part = _IMAGE_PART.sub("-", service.lower()).strip("-._") or "service"
    return f"shipyard/{app}-{part}:{release_id}"


def volume_name(app: str, volume: str) -> str:
    return f"shipyard_{app}_{volume}"


async def plan(
    *,
    app: str,
    release_id: str,
    source_dir: Path,
    compose_file: str,
    env: Mapping[str, str],
    service: str | None,
    port: int | None,
    log: LogFn,
) -> ComposePlan:
    """Resolve and rewrite the compose file; Invalid naming the problem when it cannot be used
    (docker-compose's whole complaint goes to the log)."""
    project = project_name(app, release_id)
    path = inside(source_dir, compose_file, "compose file")
    if not path.is_file():
        raise NotFound(f"compose file {compose_file} not found in the repository")
    argv = compose_argv(project, source_dir, compose_file)
    environment = compose_env(env)
    resolved = await compose_config(argv, source_dir, environment, log)
    raw = copy.deepcopy(resolved)
    services = resolved.get("services") or {}
    if not isinstance(services, dict) or not services:
        raise Invalid(f"{compose_file} defines no services")
    order = _file_order(path, list(services))
    web = _web_service(services, order, service, compose_file)
    web_port = port or _first_port(services[web])
    if web_port is None:
        raise Invalid(
            f"compose service {web!r} publishes and exposes no port: set the app's runtime.port "
            "or `port` in shipyard.yaml"
        )
    notes: list[str] = []
    images: list[str] = []
    for name, spec in services.items():
        if spec.get("container_name"):
            raise Invalid(
                f"compose service {name!r} sets container_name, which would stop a new release "
                "from starting beside the live one: remove it (services reach each other by "
                "service name)"
            )
        out = raw["services"][name]
        targets = [t for t in (_target(p) for p in spec.get("ports") or []) if t]
        if name == web:
            targets = [str(web_port), *(t for t in targets if t != str(web_port))]
            environment_of = out.get("environment")
            merged: dict[str, Any] = (
                dict(environment_of) if isinstance(environment_of, dict) else {}
            )
            merged.setdefault("PORT", str(web_port))
            for key in env:
                merged.setdefault(key, None)
            out["environment"] = merged
        _unwrite_env_values(out, env)
        if targets:
            out["ports"] = [f"127.0.0.1::{t}" for t in targets]
            if any(_published(p) for p in spec.get("ports") or []):
                notes.append(f"{name}: published ports moved to loopback ports Docker picks")
        # Like the docker runtime's containers: back after a crash or an engine restart, and
        # an init as PID 1 so SIGTERM reaches the app (else each stop waits out the grace).
        out.setdefault("restart", "unless-stopped")
        out.setdefault("init", True)
        if "build" in out:
            out["image"] = release_image(app, name, release_id)
            build = out["build"] if isinstance(out["build"], dict) else {"context": out["build"]}
            build["labels"] = {
                **(build.get("labels") or {}),
                "shipyard.app": app,
                "shipyard.release": release_id,
            }
            out["build"] = build
            images.append(out["image"])
    for key, volume in (raw.get("volumes") or {}).items():
        spec = volume if isinstance(volume, dict) else {}
        if not spec.get("external") and not spec.get("name"):
            spec["name"] = volume_name(app, str(key))
            raw["volumes"][key] = spec
    raw["version"] = _version(str(raw.get("version") or "3.9"))
    build_text = yaml.safe_dump(raw, sort_keys=False)
    for spec in raw["services"].values():
        spec.pop("build", None)
    return ComposePlan(
        project=project,
        service=web,
        port=web_port,
        build_text=build_text,
        run_text=yaml.safe_dump(raw, sort_keys=False),
        images=images,
        notes=notes,
    )


def _unwrite_env_values(service: dict[str, Any], env: Mapping[str, str]) -> None:
    """`KEY: <the app's value of KEY>` becomes `KEY:` (no value): docker-compose takes the value
    from its own environment when it starts the service, so the kept file does not hold it."""
    environment = service.get("environment")
    if isinstance(environment, dict):
        for key, value in environment.items():
            # `config` writes a `$` of a value as `$$`.
            if key in env and value == env[key].replace("$", "$$"):
                environment[key] = None


def _file_order(path: Path, names: list[str]) -> list[str]:
    """The services in the order the file lists them (`config` sorts them by name)."""
    try:
        data = yaml.safe_load(path.read_text(errors="replace"))
        listed = [str(n) for n in (data.get("services") or {})]
    except (yaml.YAMLError, AttributeError):
        return names
    return [n for n in listed if n in names] + [n for n in names if n not in listed]


def _web_service(
    services: Mapping[str, Any], order: list[str], named: str | None, compose_file: str
) -> str:
    if named is not None:
        if named not in services:
            raise Invalid(
                f"compose service {named!r} (the web service) is not in {compose_file}; "
                f"it has {', '.join(order)}"
            )
        return named
    for name in order:
        if _first_port(services[name]) is not None:
            return name
    raise Invalid(
        f"{compose_file} names no web service: no service publishes or exposes a port; "
        "add `ports` or `expose` to the web service, or name it with `service:` in shipyard.yaml"
    )


def _first_port(spec: Mapping[str, Any]) -> int | None:
    for entry in [*(spec.get("ports") or []), *(spec.get("expose") or [])]:
        target = _target(entry)
        if target and target.isdigit():
            return int(target)
    return None


def _target(entry: Any) -> str | None:
    """The container port of a ports/expose entry (long or short form), tcp only."""
    if isinstance(entry, dict):
        if entry.get("protocol", "tcp") != "tcp" or entry.get("target") is None:
            return None
        return str(entry["target"])
    text = str(entry)
    if text.endswith("/udp"):
        return None
    target = text.split("/")[0].rsplit(":", 1)[-1].split("-")[0]
    return target or None


def _published(entry: Any) -> bool:
    if isinstance(entry, dict):
        return entry.get("published") is not None
    return ":" in str(entry)


def _version(version: str) -> str:
    """A file format version that has named volumes, build labels and init (2.3+, 3.7+)."""
    major, _, minor = version.partition(".")
    number = int(minor) if minor.isdigit() else 0
    if major == "2":
        return version if number >= 3 else "2.3"
    if major == "3":
        return version if number >= 7 else "3.7"
    return version


# -- the files kept per release ------------------------------------------------------------


def save(directory: Path, text: str) -> Path:
    """Write the release's run file (owner-only: it may name env vars and internal ports)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / RUN_FILE
    path.write_text(text)
    path.chmod(0o600)
    return path


def keep_checkout(checkout: Path, directory: Path) -> Path:
    """Copy the checkout to the release's directory; the copy's path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / "src"
    shutil.rmtree(target, ignore_errors=True)  # a retried deployment starts afresh
    shutil.copytree(checkout, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    return target


def write_build_file(source_dir: Path, text: str) -> str:
    """Write the build variant into the checkout; its name relative to the checkout."""
    (source_dir / BUILD_FILE).write_text(text)
    return BUILD_FILE


def images_of(directory: Path) -> list[str]:
    """The release images a kept run file starts (what pruning the release removes)."""
    try:
        data = yaml.safe_load((directory / RUN_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return []
    services = (data or {}).get("services") or {}
    return [
        str(s["image"])
        for s in services.values()
        if isinstance(s, dict) and str(s.get("image", "")).startswith("shipyard/")
    ]


def forget(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
