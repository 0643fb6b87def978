"""The repository manifest: ``shipyard.yaml`` (or ``rustploy.yaml``) read into a checked model."""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from shipyard.errors import FieldError, Invalid

# shipyard.yaml wins over the Rustploy name when a repository has both.
MANIFEST_NAMES = ("shipyard.yaml", "shipyard.yml", "rustploy.yaml", "rustploy.yml")
MAX_MANIFEST_BYTES = 256 * 1024
# Anchors can make a small file expand enormously; a manifest never needs this many values.
MAX_YAML_VALUES = 100_000
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _TolerantLoader(_StrictLoader):
    """Also reads unknown tags (compose's ``!reset``, ``!override``) as their plain value."""


def _plain_value(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _plain_value)


def load_yaml(text: str, *, tolerate_unknown_tags: bool = False) -> Any:
    """Parse YAML safely, refusing duplicate keys; raises yaml.YAMLError."""
    loader = _TolerantLoader if tolerate_unknown_tags else _StrictLoader
    return yaml.load(text, Loader=loader)  # noqa: S506 - both loaders derive from SafeLoader


def yaml_error_message(exc: yaml.YAMLError) -> str:
    """A YAML error as users read it: what is wrong and where (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def read_tree_file(tree: Path, name: str, limit: int) -> str | None:
    """The text of ``tree/name``; None if absent; Invalid if too big, binary or escaping."""
    path = tree / name
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(tree.resolve()):
        problem = FieldError(name, "is a symlink to a file outside the repository")
        raise Invalid(f"{name} points outside the repository", [problem])
    if path.stat().st_size > limit:
        problem = FieldError(name, f"larger than {limit // 1024} KiB")
        raise Invalid(f"{name} is too large", [problem])
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{name} is not text", [FieldError(name, "not UTF-8 text")]) from None


def _command(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("command", "must be a command line (a non-empty string)")
    return value.strip()


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise PydanticCustomError("port", "must be a whole number from 1 to 65535")
    return value


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PydanticCustomError("positive", "must be a whole number of at least 1")
    return value


def _env_key(value: Any) -> str:
    if not isinstance(value, str) or not ENV_KEY_RE.match(value):
        raise PydanticCustomError(
            "env_key", "not a valid variable name: letters, digits and _, not starting with a digit"
        )
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # what the YAML said, not Python's "True"
    if isinstance(value, int | float | str):
        return str(value)
    if value is None:
        raise PydanticCustomError("env_value", 'has no value; write "" for an empty string')
    raise PydanticCustomError("env_value", "must be a string, number or boolean")


def _pipeline(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("pipeline", "must be a mapping with at least a name")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PydanticCustomError("pipeline_name", "required: a non-empty string")
    return value


def _service(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
        raise PydanticCustomError("service", "must be the name of a service in the compose file")
    return value


Command = Annotated[str, BeforeValidator(_command)]
Seconds = Annotated[int, BeforeValidator(_seconds)]
EnvKey = Annotated[str, BeforeValidator(_env_key)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
Pipeline = Annotated[dict[str, Any], BeforeValidator(_pipeline)]


class HealthCheck(BaseModel):
    """How to tell the app is up: an HTTP path that answers 2xx/3xx, or an open TCP port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    tcp: bool = False
    interval_seconds: Seconds = 10
    timeout_seconds: Seconds = 5
    threshold: Seconds = 3

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise PydanticCustomError("health_path", "must start with '/' (like /healthz)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheck:
        if (self.path is None) == (not self.tcp):
            raise PydanticCustomError("health_kind", "needs exactly one of: path, or tcp: true")
        return self


class Manifest(BaseModel):
    """What a repository says about building and running itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    build: Command | None = None
    start: Command | None = None
    release: Command | None = None
    port: Annotated[int, BeforeValidator(_port)] | None = None
    # Compose apps: the service the proxy routes to (default: the first with a port).
    service: Annotated[str, BeforeValidator(_service)] | None = None
    healthcheck: HealthCheck | None = None
    env: dict[EnvKey, EnvValue] = {}
    pipelines: list[Pipeline] = []

    @field_validator("healthcheck", mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"path": value}
        if value is not None and not isinstance(value, dict | HealthCheck):
            raise PydanticCustomError(
                "healthcheck", "must be a path like /healthz or a mapping (path or tcp, ...)"
            )
        return value


def find_manifest(tree: Path) -> Path | None:
    """The manifest file of a tree, by the names Shipyard and Rustploy use."""
    return next((tree / name for name in MANIFEST_NAMES if (tree / name).is_file()), None)


def load_manifest(tree: Path) -> Manifest | None:
    """The tree's manifest, None without one; Invalid with one FieldError per problem."""
    path = find_manifest(tree)
    if path is None:
        return None
    name = path.name
    text = read_tree_file(tree, name, MAX_MANIFEST_BYTES) or ""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise _invalid(name, [FieldError(name, yaml_error_message(exc))]) from None
    if data is None:
        return Manifest()  # an empty file sets nothing, which is valid
    if not isinstance(data, dict):
        found = type(data).__name__.replace("str", "text")
        message = f"must be a mapping of settings (build, start, port, ...), not {found}"
        raise _invalid(name, [FieldError(name, message)])
    if _count_values(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise _invalid(name, [FieldError(name, "too many values after expanding anchors")])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        shorthand = isinstance(data.get("healthcheck"), str)
        problems = [_field_error(error, shorthand) for error in exc.errors()]
        raise _invalid(name, problems) from None


def _invalid(name: str, problems: list[FieldError]) -> Invalid:
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return Invalid(f"{name} is invalid: {summary}{more}", problems)


def _count_values(data: Any, budget: int) -> int:
    # Counts shared (aliased) values each time they appear, stopping once over budget.
    count, stack = 0, [data]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _field_error(error: ErrorDetails, healthcheck_shorthand: bool) -> FieldError:
    loc = [part for part in error["loc"] if part != "[key]"]
    if error["type"] == "pipeline_name":
        loc.append("name")
    if healthcheck_shorthand and loc == ["healthcheck", "path"]:
        loc = ["healthcheck"]  # the user wrote `healthcheck: <path>`, not a mapping
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{part}"
    if error["type"] == "extra_forbidden":
        model = HealthCheck if loc[:1] == ["healthcheck"] else Manifest
        return FieldError(path, f"unknown key; expected one of: {', '.join(model.model_fields)}")
    return FieldError(path or "manifest", error["msg"])
