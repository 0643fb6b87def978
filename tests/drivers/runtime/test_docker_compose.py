"""The compose rewrite for a release's project, with the real docker-compose CLI (no engine)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.drivers.runtime import docker_compose
from shipyard.drivers.runtime.docker_compose import ComposePlan
from shipyard.errors import Invalid

from .conftest import LogLines

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is installed by ensure-docker"
)

STACK = """version: "3.2"
services:
  db:
    image: local/python:3.11
    command: sleep 600
    volumes: ["data:/data"]
  web:
    build: ./web
    ports: ["8080:${WEB_PORT}"]
    environment:
      GREETING: "${GREETING}"
    volumes: ["data:/data", "cache:/cache"]
  admin:
    image: local/python:3.11
    ports: ["9000:9000"]
volumes:
  data: {}
  cache:
    external: true
"""


async def plan_of(
    tmp_path: Path, text: str, service: str | None = None, port: int | None = None
) -> ComposePlan:
    (tmp_path / "web").mkdir(exist_ok=True)
    (tmp_path / "web" / "Dockerfile").write_text("FROM local/python:3.11\n")
    (tmp_path / "compose.yaml").write_text(text)
    return await docker_compose.plan(
        app="shop",
        release_id="01a20900-ce7e-78c7-9db1-144e297fba32",
        source_dir=tmp_path,
        compose_file="compose.yaml",
        env={"WEB_PORT": "8000", "GREETING": "s3cret-value"},
        service=service,
        port=port,
        log=LogLines(),
    )


def services(text: str) -> dict[str, Any]:
    return dict(yaml.safe_load(text)["services"])


async def test_the_first_service_with_a_port_in_file_order_is_the_web_service(
    tmp_path: Path,
) -> None:
    plan = await plan_of(tmp_path, STACK)

    assert (plan.service, plan.port) == ("web", 8000)
    assert plan.project == "shipyard-shop-01a20900ce7e78c79db1144e297fba32"


async def test_a_named_service_and_port_win(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, STACK, service="admin", port=9100)

    assert (plan.service, plan.port) == ("admin", 9100)
    assert services(plan.run_text)["admin"]["ports"] == ["127.0.0.1::9100", "127.0.0.1::9000"]


async def test_published_ports_move_to_loopback_ports_docker_picks(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, STACK)

    out = services(plan.run_text)
    assert out["web"]["ports"] == ["127.0.0.1::8000"]
    assert out["admin"]["ports"] == ["127.0.0.1::9000"]
    assert "ports" not in out["db"]


async def test_named_volumes_belong_to_the_app_not_the_release(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, STACK)

    volumes = yaml.safe_load(plan.run_text)["volumes"]
    assert volumes["data"]["name"] == "shipyard_shop_data"
    assert volumes["cache"] == {"external": True, "name": "cache"}  # the user's own


async def test_built_services_get_a_release_image_and_the_run_file_has_no_build(
    tmp_path: Path,
) -> None:
    plan = await plan_of(tmp_path, STACK)

    image = "shipyard/shop-web:01a20900-ce7e-78c7-9db1-144e297fba32"
    assert services(plan.build_text)["web"]["image"] == image
    assert services(plan.build_text)["web"]["build"]["labels"]["shipyard.app"] == "shop"
    assert "build" not in services(plan.run_text)["web"]
    assert services(plan.run_text)["web"]["image"] == image and plan.images == [image]


async def test_env_values_are_not_written_only_their_names(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, STACK)

    assert "s3cret-value" not in plan.run_text + plan.build_text
    environment = services(plan.run_text)["web"]["environment"]
    assert environment["PORT"] == "8000"
    assert environment["GREETING"] is None and environment["WEB_PORT"] is None


async def test_container_name_is_refused(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: x\n    container_name: web\n    expose: ['80']\n"

    with pytest.raises(Invalid, match="'web' sets container_name"):
        await plan_of(tmp_path, text)


async def test_an_unknown_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        await plan_of(tmp_path, "services:\n  web:\n    imagex: foo\n")

    assert caught.value.message.startswith("compose.yaml is not a valid compose file: ")
    assert "'imagex'" in caught.value.message


async def test_a_named_service_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"'site' .* is not in compose.yaml; it has db, web, admin"):
        await plan_of(tmp_path, STACK, service="site")


async def test_services_restart_and_get_an_init_unless_they_say_otherwise(tmp_path: Path) -> None:
    text = STACK.replace("    command: sleep 600\n", "    command: sleep 600\n    restart: 'no'\n")

    out = services((await plan_of(tmp_path, text)).run_text)

    assert (out["web"]["restart"], out["web"]["init"]) == ("unless-stopped", True)
    assert out["db"]["restart"] == "no"
