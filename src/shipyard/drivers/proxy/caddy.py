"""Caddy: the whole configuration is rendered as JSON and loaded through the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from shipyard.drivers.proxy.base import ProxyConfig, ProxyRejected, ProxyUnavailable, Route
from shipyard.errors import invalid_field


def _httpx() -> ModuleType:
    """httpx, imported on first use: importing it pulls in rich and pygments (its CLI), about
    10 MB the idle server should not carry."""
    import httpx

    return httpx


DEFAULT_ADMIN = "127.0.0.1:2019"
HTTP_SERVER = "shipyard_http"
HTTPS_SERVER = "shipyard_https"
# A failed dial is retried (on another upstream when there is one) before answering 502, so an
# upstream that is restarting or being swapped out does not turn into failed requests.
TRY_DURATION = "2s"
START_TIMEOUT = 15.0
STOP_GRACE = 10.0


def _static(status: int, body: str) -> dict[str, Any]:
    return {"handler": "static_response", "status_code": status, "body": body}


def _proxy_route(route: Route) -> dict[str, Any]:
    if not route.upstreams:
        # Nothing to send to yet (no live release): say so instead of a dial error per request.
        handler = _static(503, route.unavailable or "no upstream")
    else:
        handler = {
            "handler": "reverse_proxy",
            "upstreams": [{"dial": u} for u in route.upstreams],
            "load_balancing": {
                "selection_policy": {"policy": "round_robin"},
                "try_duration": TRY_DURATION,
            },
        }
        if route.health_path:
            handler["health_checks"] = {
                "active": {"uri": route.health_path, "interval": "2s", "timeout": "2s"}
            }
    return {"match": [{"host": list(route.hostnames)}], "handle": [handler], "terminal": True}


def _redirect(hosts: list[str], https_port: int) -> dict[str, Any]:
    port = "" if https_port == 443 else f":{https_port}"
    location = f"https://{{http.request.host}}{port}{{http.request.uri}}"
    handler = {
        "handler": "static_response",
        "status_code": 308,
        "headers": {"Location": [location]},
    }
    return {"match": [{"host": hosts}], "handle": [handler], "terminal": True}


def render(config: ProxyConfig, admin_address: str = DEFAULT_ADMIN) -> dict[str, Any]:
    """The Caddy JSON document for ``config`` (pure: no I/O)."""
    plain = [r for r in config.routes if r.tls == "off"]
    secure = [r for r in config.routes if r.tls != "off"]
    for i, route in enumerate(config.routes):
        if not route.hostnames:
            raise invalid_field(f"routes[{i}].hostnames", "at least one hostname is required")
        if route.tls == "custom" and not (route.cert_path and route.key_path):
            raise invalid_field(f"routes[{i}].cert_path", "cert_path and key_path are required")
    secure_hosts = [h for r in secure for h in r.hostnames]
    http_routes = [_proxy_route(r) for r in plain]
    if secure_hosts:
        # Rendered here rather than left to Caddy's automatic redirects, which would be appended
        # behind our catch-all and never reached: what we render is exactly what runs.
        http_routes.append(_redirect(secure_hosts, config.https_port))
    http_routes.append({"handle": [_static(404, "no route")]})
    servers: dict[str, Any] = {
        HTTP_SERVER: {
            "listen": [f"{config.bind_host}:{config.http_port}"],
            "routes": http_routes,
            "automatic_https": {"disable": True},
        }
    }
    apps: dict[str, Any] = {
        "http": {
            "http_port": config.http_port,
            "https_port": config.https_port,
            "servers": servers,
        },
        # Caddy would otherwise add its local CA to the system trust store (as root, it can).
        "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
    }
    if secure:
        custom = [r for r in secure if r.tls == "custom"]
        internal = [h for r in secure if r.tls == "internal" for h in r.hostnames]
        servers[HTTPS_SERVER] = {
            "listen": [f"{config.bind_host}:{config.https_port}"],
            "routes": [*(_proxy_route(r) for r in secure), {"handle": [_static(404, "no route")]}],
            "automatic_https": {
                "disable_redirects": True,
                "skip_certificates": [h for r in custom for h in r.hostnames],
            },
        }
        tls: dict[str, Any] = {}
        if custom:
            tls["certificates"] = {
                "load_files": [
                    {
                        "certificate": r.cert_path,
                        "key": r.key_path,
                        "tags": [f"shipyard-app-{r.app_id}"] if r.app_id else [],
                    }
                    for r in custom
                ]
            }
        if internal:
            # "managed" names need no policy: they fall through to Caddy's default ACME issuers.
            tls["automation"] = {
                "policies": [{"subjects": internal, "issuers": [{"module": "internal"}]}]
            }
        if tls:
            apps["tls"] = tls
    # admin.listen is part of every document, or a /load would move the admin API back to :2019.
    return {
        "admin": {"listen": admin_address, "config": {"persist": False}},
        "apps": apps,
    }


class CaddyProxy:
    """A Caddy driven through its admin API; with ``owned`` it is also our supervised child."""

    def __init__(
        self,
        admin_address: str,
        data_dir: Path | str,
        caddy_binary: str = "caddy",
        owned: bool = True,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.admin_address = admin_address
        self.data_dir = Path(data_dir)
        self.caddy_binary = caddy_binary
        self.owned = owned
        self.start_timeout = start_timeout
        self.admin_url = f"http://{admin_address}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._last: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def log_path(self) -> Path:
        """Where the owned child's output goes (appended across restarts)."""
        return self.data_dir / "caddy.log"

    @property
    def local_ca_root(self) -> Path:
        """Root certificate of Caddy's local CA (``tls internal``), once Caddy has made it."""
        return self.data_dir / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    @property
    def pid(self) -> int | None:
        """Process id of the owned child, if one was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the owned child process is alive (always False when not owned)."""
        return self._proc is not None and self._proc.poll() is None

    async def apply(self, config: ProxyConfig) -> None:
        """Load ``config`` as the whole Caddy configuration (atomic; Caddy rolls back on error)."""
        document = render(config, self.admin_address)
        async with self._lock:
            if self.owned and not self.running:
                await self._start_child()
            await self._load(document)
            self._last = document

    async def ensure_running(self) -> None:
        """Start (or restart) the owned child and re-apply the last config; else check the API."""
        async with self._lock:
            if not self.owned or self.running:
                if not await self._admin_answers(within=self.start_timeout):
                    raise ProxyUnavailable(f"Caddy admin API at {self.admin_url} does not answer")
                return
            await self._start_child()
            if self._last is not None:
                await self._load(self._last)

    async def stop(self) -> None:
        """Terminate the owned child (graceful SIGTERM, SIGKILL after a grace period)."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                if not await _wait_exit(proc, STOP_GRACE):
                    proc.kill()
                    await _wait_exit(proc, STOP_GRACE)
            if self._log is not None:
                self._log.close()
                self._log = None

    async def current(self) -> dict[str, Any]:
        """The JSON configuration Caddy is running (``{}`` when nothing is loaded)."""
        try:
            async with self._client(10) as client:
                response = (await client.get("/config/")).raise_for_status()
        except _httpx().HTTPError as exc:
            raise ProxyUnavailable(f"Caddy admin API at {self.admin_url}: {exc}") from exc
        return response.json() or {}

    def _client(self, timeout: float) -> httpx.AsyncClient:
        # A fresh client per call: Caddy restarts its admin server on every load, closing
        # pooled keep-alive connections under us.
        return _httpx().AsyncClient(base_url=self.admin_url, timeout=timeout)

    async def _load(self, document: dict[str, Any]) -> None:
        try:
            # Generous timeout: a load provisions every app (TLS storage, CA) before it answers.
            async with self._client(60) as client:
                response = await client.post(
                    "/load",
                    content=json.dumps(document),
                    headers={"Content-Type": "application/json"},
                )
        except _httpx().HTTPError as exc:
            raise ProxyUnavailable(f"Caddy admin API at {self.admin_url}: {exc}") from exc
        if response.status_code != 200:
            try:
                message = str(response.json().get("error") or response.text)
            except ValueError:
                message = response.text
            raise ProxyRejected(
                f"Caddy rejected the proxy configuration ({response.status_code}): "
                f"{message.strip()}"
            )

    async def _admin_answers(self, within: float) -> bool:
        deadline = time.monotonic() + within
        async with self._client(2) as client:
            while True:
                with contextlib.suppress(_httpx().HTTPError):
                    if (await client.get("/config/")).status_code == 200:
                        return True
                if self.owned and self._proc is not None and self._proc.poll() is not None:
                    return False
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.05)

    async def _start_child(self) -> None:
        # Something answering on our admin address without being our child is a Caddy left behind
        # by an earlier Shipyard process: stop it, so that the one we run is one we supervise.
        self._proc = None
        if await self._admin_answers(within=0):
            with contextlib.suppress(_httpx().HTTPError):
                async with self._client(5) as client:
                    await client.post("/stop")
            for _ in range(int(STOP_GRACE / 0.1)):
                if not await self._admin_answers(within=0):
                    break
                await asyncio.sleep(0.1)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = self.data_dir / "caddy-bootstrap.json"
        bootstrap.write_text(
            json.dumps({"admin": {"listen": self.admin_address, "config": {"persist": False}}})
        )
        env = {
            **os.environ,
            # Caddy's storage (local CA, certificates, ACME accounts) lives in Shipyard's data dir.
            "XDG_DATA_HOME": str(self.data_dir / "data"),
            "XDG_CONFIG_HOME": str(self.data_dir / "config"),
        }
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own argv; Popen only forks
            [self.caddy_binary, "run", "--config", str(bootstrap)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for Shipyard must not kill the proxy before stop().
            start_new_session=True,
        )
        if not await self._admin_answers(within=self.start_timeout):
            tail = self.log_path.read_text(errors="replace")[-2000:]
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.kill()
                await _wait_exit(proc, STOP_GRACE)
            raise ProxyUnavailable(f"Caddy did not start (admin {self.admin_url}); log:\n{tail}")


async def _wait_exit(proc: subprocess.Popen[bytes], within: float) -> bool:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True
