"""Reading and checking shipyard.yaml / rustploy.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.drivers.manifest import HealthCheck, Manifest, load_manifest
from shipyard.errors import FieldError, Invalid

FULL = """
build: pip install -r requirements.txt
start: gunicorn app:app --bind 0.0.0.0:$PORT
release: python manage.py migrate
port: 8000
healthcheck:
  path: /healthz
  interval_seconds: 5
  timeout_seconds: 2
  threshold: 4
env:
  DJANGO_SETTINGS_MODULE: site.settings
  WORKERS: 4
  DEBUG: false
pipelines:
  - name: ci
    stages: [{name: test, steps: [{run: pytest}]}]
"""


def manifest_in(tmp_path: Path, text: str, name: str = "shipyard.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def problems(tmp_path: Path, text: str) -> list[FieldError]:
    """The field errors loading ``text`` as shipyard.yaml gives."""
    with pytest.raises(Invalid) as caught:
        load_manifest(manifest_in(tmp_path, text))
    return caught.value.details


def test_full_manifest_is_read(tmp_path: Path) -> None:
    manifest = load_manifest(manifest_in(tmp_path, FULL))
    assert manifest == Manifest(
        build="pip install -r requirements.txt",
        start="gunicorn app:app --bind 0.0.0.0:$PORT",
        release="python manage.py migrate",
        port=8000,
        healthcheck=HealthCheck(
            path="/healthz", interval_seconds=5, timeout_seconds=2, threshold=4
        ),
        env={"DJANGO_SETTINGS_MODULE": "site.settings", "WORKERS": "4", "DEBUG": "false"},
        pipelines=[{"name": "ci", "stages": [{"name": "test", "steps": [{"run": "pytest"}]}]}],
    )


def test_healthcheck_path_shorthand(tmp_path: Path) -> None:
    manifest = load_manifest(manifest_in(tmp_path, "healthcheck: /up\n"))
    assert manifest is not None
    assert manifest.healthcheck == HealthCheck(path="/up")


def test_tcp_healthcheck(tmp_path: Path) -> None:
    manifest = load_manifest(manifest_in(tmp_path, "healthcheck: {tcp: true, threshold: 2}\n"))
    assert manifest is not None
    assert manifest.healthcheck == HealthCheck(tcp=True, threshold=2)


def test_no_manifest_is_none(tmp_path: Path) -> None:
    assert load_manifest(tmp_path) is None


def test_rustploy_yaml_is_read_when_shipyard_yaml_is_absent(tmp_path: Path) -> None:
    manifest = load_manifest(manifest_in(tmp_path, "port: 3000\n", name="rustploy.yaml"))
    assert manifest is not None
    assert manifest.port == 3000


def test_shipyard_yaml_wins_over_rustploy_yaml(tmp_path: Path) -> None:
    manifest_in(tmp_path, "port: 3000\n", name="rustploy.yaml")
    manifest = load_manifest(manifest_in(tmp_path, "port: 4000\n"))
    assert manifest is not None
    assert manifest.port == 4000


def test_empty_manifest_sets_nothing(tmp_path: Path) -> None:
    assert load_manifest(manifest_in(tmp_path, "# nothing yet\n")) == Manifest()


def test_port_out_of_range(tmp_path: Path) -> None:
    assert problems(tmp_path, "port: 70000\n") == [
        FieldError("port", "must be a whole number from 1 to 65535")
    ]


def test_healthcheck_interval_must_be_positive(tmp_path: Path) -> None:
    assert problems(tmp_path, "healthcheck: {path: /up, interval_seconds: 0}\n") == [
        FieldError("healthcheck.interval_seconds", "must be a whole number of at least 1")
    ]


def test_healthcheck_path_must_start_with_a_slash(tmp_path: Path) -> None:
    assert problems(tmp_path, "healthcheck: healthz\n") == [
        FieldError("healthcheck", "must start with '/' (like /healthz)")
    ]


def test_healthcheck_needs_path_or_tcp(tmp_path: Path) -> None:
    assert problems(tmp_path, "healthcheck: {threshold: 2}\n") == [
        FieldError("healthcheck", "needs exactly one of: path, or tcp: true")
    ]


def test_bad_env_key_is_named(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "env:\n  1BAD: x\n")
    assert problem.field == "env.1BAD"
    assert problem.message.startswith("not a valid variable name")


def test_env_value_without_value(tmp_path: Path) -> None:
    assert problems(tmp_path, "env:\n  EMPTY:\n") == [
        FieldError("env.EMPTY", 'has no value; write "" for an empty string')
    ]


def test_empty_start_command(tmp_path: Path) -> None:
    assert problems(tmp_path, 'start: "  "\n') == [
        FieldError("start", "must be a command line (a non-empty string)")
    ]


def test_pipeline_without_name(tmp_path: Path) -> None:
    assert problems(tmp_path, "pipelines:\n  - name: ok\n  - stages: []\n") == [
        FieldError("pipelines[1].name", "required: a non-empty string")
    ]


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "buidl: make\n")
    assert problem.field == "buidl"
    assert problem.message.startswith("unknown key; expected one of: build, start, release")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    fields = [p.field for p in problems(tmp_path, "port: 0\nenv: {9X: a}\nstart: []\n")]
    assert sorted(fields) == ["env.9X", "port", "start"]


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "port: 8000\nenv:\n  A: [1, 2\n")
    assert problem.field == "shipyard.yaml"
    assert problem.message.startswith("invalid YAML at line 4, column 1:")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "port: 80\nport: 81\n")
    assert problem == FieldError(
        "shipyard.yaml", "invalid YAML at line 2, column 1: found duplicate key 'port'"
    )


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, "- build\n- start\n") == [
        FieldError(
            "shipyard.yaml", "must be a mapping of settings (build, start, port, ...), not list"
        )
    ]


def test_error_message_summarizes_the_problems(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        load_manifest(manifest_in(tmp_path, "port: 0\n", name="rustploy.yaml"))
    assert caught.value.message == (
        "rustploy.yaml is invalid: port: must be a whole number from 1 to 65535"
    )
    assert caught.value.status == 400


def test_anchor_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    [problem] = problems(tmp_path, "\n".join(lines) + "\n")
    assert problem == FieldError("shipyard.yaml", "too many values after expanding anchors")
