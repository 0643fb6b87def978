"""A real `shipyard serve` process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings

SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_DATA_DIR"] = str(settings.data_dir)
    env["SHIPYARD_PASSWORD_HASH_MEMORY_KIB"] = "1024"
    env["SHIPYARD_PASSWORD_HASH_TIME_COST"] = "1"
    if settings.database_url:
        env["SHIPYARD_DATABASE_URL"] = settings.database_url
    return env


class Server:
    def __init__(
        self, settings: Settings, log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [SHIPYARD, "serve", "--port", str(self.port)],
                env={**server_env(self.settings), **self.extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("shipyard serve did not answer within 30 s:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    srv = Server(settings, tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()
