"""One lazily made Docker SDK client, shared by the step executor and the runtime."""

from __future__ import annotations

import threading
from typing import Any

from shipyard.errors import Unavailable


class LazyDockerClient:
    """Made on first use (in a worker thread: it talks to the engine), closed at shutdown."""

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        import docker  # only installs that run containers pay for the SDK

        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.from_env()
                except docker.errors.DockerException as exc:
                    raise Unavailable(
                        f"Docker Engine not reachable ({exc}); start it (scripts/ensure-docker) "
                        "or point DOCKER_HOST at one"
                    ) from exc
            return self._client

    def close(self) -> None:
        """Close the engine connections; the next get() opens new ones."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
