"""Build detection: what a source tree is and how to build and start it, from its files alone."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from shipyard.drivers.manifest import load_yaml, read_tree_file, yaml_error_message
from shipyard.errors import FieldError, Invalid

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
MAX_FILE_BYTES = 1024 * 1024
# Where each framework listens unless told otherwise (its documented default).
DEFAULT_PORTS = {
    "django": 8000,
    "fastapi": 8000,
    "flask": 5000,
    "next": 3000,
    "nuxt": 3000,
    "vite": 5173,
    "express": 3000,
    "react": 3000,
}
# The first listed framework wins: a Next app also depends on react, a Vite app may use express.
NODE_FRAMEWORKS = ("next", "nuxt", "vite", "express", "react")
PYTHON_FRAMEWORKS = ("django", "fastapi", "flask")
_REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class ComposeServiceSummary(BaseModel):
    """One service of a compose file (Rustploy ``ComposeServiceSummary``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    image: str | None = None
    build: bool = False
    depends_on: list[str] = []
    ports: list[str] = []
    profiles: list[str] = []


class ComposeSummary(BaseModel):
    """A compose file's services and the one that serves the app (Rustploy ``ComposeSummary``)."""

    model_config = ConfigDict(frozen=True)

    file: str
    app_service: str | None = None
    services: list[ComposeServiceSummary] = []


class Detection(BaseModel):
    """What detection found; the first five fields are Rustploy's ``DetectionResult``."""

    model_config = ConfigDict(frozen=True)

    framework: str
    package_manager: str
    lockfile: str | None
    build_profile: str
    dockerfile_present: bool
    start_command: str | None = None
    port_hint: int | None = None
    compose: ComposeSummary | None = None

    def result(self) -> dict[str, Any]:
        """The Rustploy ``DetectionResult`` fields only."""
        fields = ("framework", "package_manager", "lockfile", "build_profile", "dockerfile_present")
        return self.model_dump(include=set(fields))


class _Language(BaseModel):
    profile: str
    package_manager: str
    lockfile: str | None = None
    framework: str = "none"
    start_command: str | None = None


def detect(tree: Path) -> Detection:
    """Read the tree and report how to build it: dockerfile > compose > language > static >
    procfile (a Procfile ``web`` line alone: nothing to install, just a command to run)."""
    tree = Path(tree)
    dockerfile = read_tree_file(tree, "Dockerfile", MAX_FILE_BYTES)
    procfile_web = _procfile_web(tree)
    compose_name = next((n for n in COMPOSE_FILES if (tree / n).is_file()), None)
    compose = None
    if compose_name is not None:
        try:
            compose = _compose_summary(tree, compose_name)
        except Invalid:
            # A broken compose file only matters when it is what gets deployed.
            if dockerfile is None:
                raise
    language = _language(tree)
    if dockerfile is not None:
        profile = "dockerfile"
    elif compose is not None:
        profile = "compose"
    elif language is not None:
        profile = language.profile
    elif (tree / "index.html").is_file():
        profile = "static"
    elif procfile_web is not None:
        profile = "procfile"
    else:
        profile = "unknown"
    if language is None:
        language = _Language(profile=profile, package_manager="none")
        if profile == "unknown":
            language = _Language(profile=profile, package_manager="unknown", framework="unknown")
    return Detection(
        framework=language.framework,
        package_manager=language.package_manager,
        lockfile=language.lockfile,
        build_profile=profile,
        dockerfile_present=dockerfile is not None,
        start_command=procfile_web or language.start_command,
        port_hint=_port_hint(profile, dockerfile, compose, language.framework),
        compose=compose,
    )


def _port_hint(
    profile: str, dockerfile: str | None, compose: ComposeSummary | None, framework: str
) -> int | None:
    if profile == "dockerfile" and dockerfile is not None:
        exposed = re.search(r"^\s*EXPOSE\s+(\d+)", dockerfile, re.IGNORECASE | re.MULTILINE)
        if exposed:
            return int(exposed.group(1))
    if profile == "compose" and compose is not None:
        app = next((s for s in compose.services if s.name == compose.app_service), None)
        for port in app.ports if app else []:
            # "8080:80", "127.0.0.1:8080:80/tcp", "80": the container side is the last part.
            target = port.split("/")[0].rsplit(":", 1)[-1].split("-")[0]
            if target.isdigit():
                return int(target)
    return DEFAULT_PORTS.get(framework)


def _procfile_web(tree: Path) -> str | None:
    text = read_tree_file(tree, "Procfile", MAX_FILE_BYTES) or ""
    for line in text.splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == "web" and command.strip():
            return command.strip()
    return None


def _language(tree: Path) -> _Language | None:
    # Go and Rust first: their repositories often carry a docs requirements.txt or a
    # package.json for assets, while Python apps often carry a package.json for CSS tooling.
    if (tree / "go.mod").is_file():
        lockfile = "go.sum" if (tree / "go.sum").is_file() else None
        return _Language(profile="go", package_manager="go", lockfile=lockfile)
    if (tree / "Cargo.toml").is_file():
        lockfile = "Cargo.lock" if (tree / "Cargo.lock").is_file() else None
        return _Language(profile="rust", package_manager="cargo", lockfile=lockfile)
    return _python(tree) or _node(tree)


def _python(tree: Path) -> _Language | None:
    pyproject = _toml(tree, "pyproject.toml")
    requirements = read_tree_file(tree, "requirements.txt", MAX_FILE_BYTES)
    has_manage = (tree / "manage.py").is_file()
    # A bare app.py / main.py (standard library only) is a Python app with nothing to install.
    markers = ("manage.py", "uv.lock", "poetry.lock", "app.py", "main.py")
    if (
        pyproject is None
        and requirements is None
        and not any((tree / m).is_file() for m in markers)
    ):
        return None
    pyproject = pyproject or {}
    poetry = _table(_table(pyproject, "tool"), "poetry")
    lockfile: str | None = None
    if (tree / "uv.lock").is_file():
        manager, lockfile = "uv", "uv.lock"
    elif (tree / "poetry.lock").is_file():
        manager, lockfile = "poetry", "poetry.lock"
    elif poetry:
        manager = "poetry"
    elif requirements is not None or pyproject:
        manager = "pip"
    else:
        manager = "none"  # a bare manage.py or app.py: nothing to install from
    names = _requirement_names(requirements or "") | _pyproject_names(pyproject)
    if has_manage:
        names.add("django")
    framework = next((f for f in PYTHON_FRAMEWORKS if f in names), "none")
    return _Language(
        profile="python", package_manager=manager, lockfile=lockfile, framework=framework
    )


def _node(tree: Path) -> _Language | None:
    text = read_tree_file(tree, "package.json", MAX_FILE_BYTES)
    locks = {"pnpm-lock.yaml": "pnpm", "yarn.lock": "yarn", "package-lock.json": "npm"}
    lockfile = next((name for name in locks if (tree / name).is_file()), None)
    if text is None and lockfile is None:
        return None
    manager = locks[lockfile] if lockfile else "npm"
    try:
        package = json.loads(text or "{}")
    except json.JSONDecodeError:
        package = {}  # npm reports a broken package.json better than we could, at build time
    package = package if isinstance(package, dict) else {}
    names = set(_table(package, "dependencies")) | set(_table(package, "devDependencies"))
    has_start = isinstance(_table(package, "scripts").get("start"), str)
    return _Language(
        profile="node",
        package_manager=manager,
        lockfile=lockfile,
        framework=next((f for f in NODE_FRAMEWORKS if f in names), "none"),
        # Through the package manager, so node_modules/.bin is on PATH as the script expects.
        start_command=f"{manager} start" if has_start else None,
    )


def _toml(tree: Path, name: str) -> dict[str, Any] | None:
    text = read_tree_file(tree, name, MAX_FILE_BYTES)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}  # the installer reports the syntax error, with context, at build time


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        match = _REQUIREMENT_NAME_RE.match(line)
        if match and not line.lstrip().startswith(("-", "#")):
            names.add(_normalize(match.group(1)))
    return names


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pyproject_names(pyproject: dict[str, Any]) -> set[str]:
    deps = _list(_table(pyproject, "project").get("dependencies"))
    names = _requirement_names("\n".join(d for d in deps if isinstance(d, str)))
    poetry_deps = _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies")
    return names | {_normalize(name) for name in poetry_deps}


def _compose_summary(tree: Path, name: str) -> ComposeSummary:
    text = read_tree_file(tree, name, MAX_FILE_BYTES) or ""
    try:
        data = load_yaml(text, tolerate_unknown_tags=True)
    except yaml.YAMLError as exc:
        message = yaml_error_message(exc)
        raise Invalid(f"{name}: {message}", [FieldError(name, message)]) from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        message = "has no services mapping"
        raise Invalid(f"{name} {message}", [FieldError(f"{name}.services", message)])
    summaries = [_service(str(key), spec) for key, spec in services.items()]
    app = next((s.name for s in summaries if s.ports or s.build), None)
    return ComposeSummary(file=name, app_service=app, services=summaries)


def _service(name: str, spec: Any) -> ComposeServiceSummary:
    spec = spec if isinstance(spec, dict) else {}
    depends = spec.get("depends_on")
    image = spec.get("image")
    return ComposeServiceSummary(
        name=name,
        image=str(image) if image is not None else None,
        build=bool(spec.get("build")),
        # list form (["db"]) or mapping form ({db: {condition: ...}}): the names either way
        depends_on=[str(d) for d in depends] if isinstance(depends, list | dict) else [],
        ports=[port for port in map(_port, _list(spec.get("ports"))) if port],
        profiles=[str(p) for p in _list(spec.get("profiles"))],
    )


def _port(entry: Any) -> str:
    if isinstance(entry, dict):
        # Long syntax: {target, published, host_ip, protocol} back to the short form.
        target = entry.get("target")
        if target is None:
            return ""
        text = str(target)
        if entry.get("published") is not None:
            text = f"{entry['published']}:{text}"
            if entry.get("host_ip"):
                text = f"{entry['host_ip']}:{text}"
        protocol = entry.get("protocol")
        return f"{text}/{protocol}" if protocol and protocol != "tcp" else text
    return "" if entry is None or isinstance(entry, bool) else str(entry)
