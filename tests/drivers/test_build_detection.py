"""Build detection on small source trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.drivers.build_detection import ComposeServiceSummary, detect
from shipyard.errors import Invalid


def write(tree: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> content) under ``tree`` and return it."""
    for name, content in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tree


def package_json(**fields: object) -> str:
    return json.dumps(fields)


def test_dockerfile_profile_with_exposed_port(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"Dockerfile": "FROM scratch\nEXPOSE 8080/tcp\n"}))
    assert found.build_profile == "dockerfile"
    assert found.dockerfile_present is True
    assert found.port_hint == 8080
    assert (found.framework, found.package_manager, found.lockfile) == ("none", "none", None)


def test_compose_profile_summarizes_services(tmp_path: Path) -> None:
    compose = """
services:
  db:
    image: postgres:16
    profiles: [data]
  web:
    build: .
    ports: ["8080:80", 9000, {target: 53, published: 5353, protocol: udp}]
    depends_on:
      db: {condition: service_healthy}
  worker:
    image: app-worker
    depends_on: [db, web]
"""
    found = detect(write(tmp_path, {"compose.yaml": compose}))
    assert found.build_profile == "compose"
    assert found.compose is not None
    assert found.compose.file == "compose.yaml"
    assert found.compose.app_service == "web"
    assert found.compose.services == [
        ComposeServiceSummary(name="db", image="postgres:16", profiles=["data"]),
        ComposeServiceSummary(
            name="web", build=True, depends_on=["db"], ports=["8080:80", "9000", "5353:53/udp"]
        ),
        ComposeServiceSummary(name="worker", image="app-worker", depends_on=["db", "web"]),
    ]
    assert found.port_hint == 80


def test_docker_compose_yml_is_found_and_reset_tags_are_read(tmp_path: Path) -> None:
    compose = "services:\n  app:\n    image: nginx\n    ports: !reset []\n"
    found = detect(write(tmp_path, {"docker-compose.yml": compose}))
    assert found.compose is not None
    assert found.compose.file == "docker-compose.yml"
    assert found.compose.app_service is None


def test_broken_compose_file_is_reported_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        detect(write(tmp_path, {"compose.yml": "services:\n  web: [unclosed\n"}))
    assert caught.value.details[0].field == "compose.yml"
    assert "invalid YAML at line 3" in caught.value.details[0].message


def test_procfile_web_line_is_the_start_command(tmp_path: Path) -> None:
    procfile = "release: ./migrate\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n"
    found = detect(write(tmp_path, {"Procfile": procfile, "requirements.txt": "gunicorn\n"}))
    assert found.start_command == "gunicorn app:app --bind 0.0.0.0:$PORT"


def test_uv_project_with_fastapi(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "api"\ndependencies = ["fastapi[standard]>=0.115"]\n'
    found = detect(write(tmp_path, {"pyproject.toml": pyproject, "uv.lock": ""}))
    assert (found.build_profile, found.package_manager, found.lockfile) == (
        "python",
        "uv",
        "uv.lock",
    )
    assert found.framework == "fastapi"
    assert found.port_hint == 8000


def test_poetry_project_by_tool_table(tmp_path: Path) -> None:
    pyproject = '[tool.poetry]\nname = "site"\n[tool.poetry.dependencies]\nFlask = "^3"\n'
    found = detect(write(tmp_path, {"pyproject.toml": pyproject}))
    assert (found.package_manager, found.lockfile, found.framework) == ("poetry", None, "flask")


def test_poetry_lock_names_the_lockfile(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"pyproject.toml": "", "poetry.lock": ""}))
    assert (found.package_manager, found.lockfile) == ("poetry", "poetry.lock")


def test_pip_requirements_with_django_manage_py(tmp_path: Path) -> None:
    files = {"requirements.txt": "# web\nDjango==5.0\n-r base.txt\n", "manage.py": ""}
    found = detect(write(tmp_path, files))
    assert (found.build_profile, found.package_manager, found.lockfile) == ("python", "pip", None)
    assert found.framework == "django"


def test_flask_from_requirements(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"requirements.txt": "flask>=3\n"}))
    assert (found.framework, found.port_hint) == ("flask", 5000)


def test_npm_next_app_starts_with_npm_start(tmp_path: Path) -> None:
    package = package_json(
        dependencies={"next": "14", "react": "18"}, scripts={"start": "next start"}
    )
    found = detect(write(tmp_path, {"package.json": package, "package-lock.json": "{}"}))
    assert (found.build_profile, found.package_manager) == ("node", "npm")
    assert (found.lockfile, found.framework) == ("package-lock.json", "next")
    assert found.start_command == "npm start"


def test_pnpm_vite_app(tmp_path: Path) -> None:
    package = package_json(devDependencies={"vite": "5", "react": "18"})
    found = detect(write(tmp_path, {"package.json": package, "pnpm-lock.yaml": ""}))
    assert (found.package_manager, found.lockfile, found.framework) == (
        "pnpm",
        "pnpm-lock.yaml",
        "vite",
    )
    assert found.start_command is None


def test_yarn_express_app(tmp_path: Path) -> None:
    package = package_json(dependencies={"express": "4"}, scripts={"start": "node server.js"})
    found = detect(write(tmp_path, {"package.json": package, "yarn.lock": ""}))
    assert (found.package_manager, found.framework, found.start_command) == (
        "yarn",
        "express",
        "yarn start",
    )


def test_package_json_without_lockfile_is_npm(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"package.json": package_json(dependencies={"nuxt": "3"})}))
    assert (found.package_manager, found.lockfile, found.framework) == ("npm", None, "nuxt")


def test_go_module(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"go.mod": "module example.com/app\n", "go.sum": ""}))
    assert (found.build_profile, found.package_manager, found.lockfile) == ("go", "go", "go.sum")


def test_cargo_crate(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"Cargo.toml": '[package]\nname = "app"\n'}))
    assert (found.build_profile, found.package_manager, found.lockfile) == ("rust", "cargo", None)


def test_static_site(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"index.html": "<h1>hi</h1>", "style.css": ""}))
    assert (found.build_profile, found.package_manager, found.framework) == (
        "static",
        "none",
        "none",
    )


def test_nothing_recognisable_is_unknown(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"README.md": "# notes\n"}))
    assert found.result() == {
        "framework": "unknown",
        "package_manager": "unknown",
        "lockfile": None,
        "build_profile": "unknown",
        "dockerfile_present": False,
    }


def test_dockerfile_wins_over_compose_and_language(tmp_path: Path) -> None:
    files = {
        "Dockerfile": "FROM python:3.12\n",
        "compose.yaml": "services:\n  web:\n    build: .\n",
        "requirements.txt": "fastapi\n",
    }
    found = detect(write(tmp_path, files))
    assert found.build_profile == "dockerfile"
    assert found.compose is not None  # still reported
    assert (found.package_manager, found.framework) == ("pip", "fastapi")


def test_compose_wins_over_language(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  web:\n    build: .\n", "go.mod": "module app\n"}
    assert detect(write(tmp_path, files)).build_profile == "compose"


def test_broken_compose_file_is_ignored_when_a_dockerfile_decides(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM scratch\n", "compose.yaml": "services: [\n"}
    found = detect(write(tmp_path, files))
    assert (found.build_profile, found.compose) == ("dockerfile", None)


def test_python_wins_over_a_package_json_for_assets(tmp_path: Path) -> None:
    files = {"requirements.txt": "django\n", "package.json": package_json(), "manage.py": ""}
    assert detect(write(tmp_path, files)).build_profile == "python"


def test_a_procfile_alone_is_the_procfile_profile(tmp_path: Path) -> None:
    files = {"Procfile": "worker: ./work\nweb: ./serve --port $PORT\n", "serve": "#!/bin/sh\n"}
    found = detect(write(tmp_path, files))
    assert found.result() == {
        "framework": "none",
        "package_manager": "none",
        "lockfile": None,
        "build_profile": "procfile",
        "dockerfile_present": False,
    }
    assert found.start_command == "./serve --port $PORT"


def test_a_procfile_without_a_web_line_decides_nothing(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"Procfile": "worker: ./work\n"}))
    assert (found.build_profile, found.start_command) == ("unknown", None)


def test_a_language_wins_over_a_procfile(tmp_path: Path) -> None:
    files = {"Procfile": "web: ./bin/server\n", "go.mod": "module app\n"}
    found = detect(write(tmp_path, files))
    assert (found.build_profile, found.start_command) == ("go", "./bin/server")
