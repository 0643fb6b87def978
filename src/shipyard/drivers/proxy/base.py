"""What a proxy driver is given (the whole routing table) and the Protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shipyard.errors import ShipyardError, Unavailable

TlsMode = Literal["managed", "internal", "custom", "off"]


@dataclass(frozen=True)
class Route:
    """Requests for ``hostnames`` go to ``upstreams`` (``host:port`` dials), served per ``tls``."""

    hostnames: list[str]
    upstreams: list[str]
    # managed: ACME certificates; internal: the proxy's own CA; custom: cert_path/key_path files;
    # off: plain HTTP only.
    tls: TlsMode
    app_id: str = ""
    cert_path: str | None = None
    key_path: str | None = None
    # When set, upstreams are probed at this path and only healthy ones get traffic.
    health_path: str | None = None
    # Without upstreams: the body of the 503 answer (say why: the app is stopped, ...).
    unavailable: str | None = None


@dataclass(frozen=True)
class ProxyConfig:
    """The whole proxy configuration; applying it replaces everything that was loaded before."""

    routes: list[Route] = field(default_factory=list)
    http_port: int = 80
    https_port: int = 443
    # Empty means every interface; tests and single-host setups may pin it to 127.0.0.1.
    bind_host: str = ""


@dataclass
class ProxyRejected(ShipyardError):
    """The proxy refused a configuration; the previous one keeps serving."""

    code: str = "proxy_config_rejected"
    status: int = 502


@dataclass
class ProxyUnavailable(Unavailable):
    """The proxy (or its admin endpoint) cannot be reached or started."""

    code: str = "proxy_unavailable"


class Proxy(Protocol):
    """A reverse proxy that is configured declaratively, one whole configuration at a time."""

    async def apply(self, config: ProxyConfig) -> None:
        """Atomically replace the whole configuration; raise ProxyRejected and keep the old one."""
        ...

    async def ensure_running(self) -> None:
        """Make sure the proxy runs (started or restarted if we own it) with the last config."""
        ...

    async def stop(self) -> None:
        """Stop the proxy if we own it; a no-op otherwise."""
        ...

    async def current(self) -> dict[str, Any]:
        """The configuration the proxy has loaded, in its own format."""
        ...
