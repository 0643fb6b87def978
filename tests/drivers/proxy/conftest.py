"""Fixtures: the real Caddy (from scripts/ensure-caddy) as an owned child, and tiny upstreams."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shipyard.drivers.proxy.base import ProxyConfig, Route
from shipyard.drivers.proxy.caddy import CaddyProxy

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """An HTTP server on 127.0.0.1 answering every GET with ``body`` (``/slow`` after a delay)."""

    def __init__(self, body: str, slow_seconds: float = 0.0) -> None:
        payload = body.encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes; Nagle would delay each response 40 ms.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                if self.path == "/slow":
                    time.sleep(slow_seconds)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.dial = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def caddy_binary() -> str:
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-caddy")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"scripts/ensure-caddy failed:\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def upstream() -> Iterator[Callable[..., Upstream]]:
    started: list[Upstream] = []

    def start(body: str, slow_seconds: float = 0.0) -> Upstream:
        started.append(Upstream(body, slow_seconds))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
async def proxy(tmp_path: Path, caddy_binary: str) -> AsyncIterator[CaddyProxy]:
    caddy = CaddyProxy(f"127.0.0.1:{free_port()}", tmp_path / "caddy", caddy_binary=caddy_binary)
    await caddy.ensure_running()
    try:
        yield caddy
    finally:
        await caddy.stop()


@pytest.fixture
def make_config() -> Callable[..., ProxyConfig]:
    """Configs on one pair of free loopback ports, so successive applies share listeners."""
    http_port, https_port = free_port(), free_port()

    def make(*routes: Route) -> ProxyConfig:
        return ProxyConfig(
            routes=list(routes), http_port=http_port, https_port=https_port, bind_host="127.0.0.1"
        )

    return make
