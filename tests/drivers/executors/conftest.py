"""Fixtures for the executors: a real Docker Engine and base image, made by the repo's scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.drivers.executors.docker import DockerExecutor


@pytest.fixture(scope="session")
def docker_client(docker_image: str) -> Iterator[Any]:
    """A plain SDK client for the tests' own checks on the engine."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def step_labels(docker_client: Any) -> Iterator[dict[str, str]]:
    """Labels unique to this test; its containers are removed afterwards, whatever happened."""
    labels = {"shipyard.test": uuid.uuid4().hex}
    yield labels
    for container in docker_client.containers.list(
        all=True, filters={"label": f"shipyard.test={labels['shipyard.test']}"}
    ):
        container.remove(force=True, v=True)


@pytest.fixture
def docker_executor(docker_image: str) -> Iterator[DockerExecutor]:
    executor = DockerExecutor()
    yield executor
    executor.close()
