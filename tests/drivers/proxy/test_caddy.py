"""The Caddy driver: pure rendering, then the same configurations against a real Caddy."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import os
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shipyard.drivers.proxy.base import (
    Proxy,
    ProxyConfig,
    ProxyRejected,
    ProxyUnavailable,
    Route,
)
from shipyard.drivers.proxy.caddy import HTTP_SERVER, HTTPS_SERVER, CaddyProxy, render
from shipyard.errors import Invalid
from tests.drivers.proxy.conftest import Upstream, free_port

ADMIN = "127.0.0.1:2999"
# Caddy binds a fresh SO_REUSEPORT listener per load; only with this Linux setting (made by
# scripts/ensure-caddy where the kernel has it) do connections queued on the old one survive.
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")
MakeConfig = Callable[..., ProxyConfig]
StartUpstream = Callable[..., Upstream]


def cfg(*routes: Route, http_port: int = 8080, https_port: int = 8443) -> ProxyConfig:
    return ProxyConfig(routes=list(routes), http_port=http_port, https_port=https_port)


def handler(server: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return server["routes"][index]["handle"][0]


# --- render(): pure ---------------------------------------------------------------------------


def test_render_off_is_plain_http_only() -> None:
    doc = render(cfg(Route(["a.test"], ["127.0.0.1:9001", "127.0.0.1:9002"], "off")), ADMIN)
    assert doc["admin"]["listen"] == ADMIN
    http = doc["apps"]["http"]
    assert (http["http_port"], http["https_port"]) == (8080, 8443)
    assert set(http["servers"]) == {HTTP_SERVER}
    server = http["servers"][HTTP_SERVER]
    assert server["listen"] == [":8080"]
    assert server["routes"][0]["match"] == [{"host": ["a.test"]}]
    proxy = handler(server)
    assert proxy["handler"] == "reverse_proxy"
    assert proxy["upstreams"] == [{"dial": "127.0.0.1:9001"}, {"dial": "127.0.0.1:9002"}]
    assert "health_checks" not in proxy
    # The last route answers unknown hosts itself instead of Caddy's empty 200.
    assert server["routes"][-1] == {
        "handle": [{"handler": "static_response", "status_code": 404, "body": "no route"}]
    }
    assert "tls" not in doc["apps"]
    assert doc["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_render_internal_uses_the_local_ca_and_redirects_http() -> None:
    doc = render(cfg(Route(["app.localhost"], ["127.0.0.1:9001"], "internal", app_id="a1")))
    servers = doc["apps"]["http"]["servers"]
    https = servers[HTTPS_SERVER]
    assert https["listen"] == [":8443"]
    assert https["routes"][0]["match"] == [{"host": ["app.localhost"]}]
    assert https["automatic_https"]["disable_redirects"] is True
    assert doc["apps"]["tls"]["automation"]["policies"] == [
        {"subjects": ["app.localhost"], "issuers": [{"module": "internal"}]}
    ]
    redirect = servers[HTTP_SERVER]["routes"][0]
    assert redirect["match"] == [{"host": ["app.localhost"]}]
    assert redirect["handle"][0]["status_code"] == 308
    assert redirect["handle"][0]["headers"]["Location"] == [
        "https://{http.request.host}:8443{http.request.uri}"
    ]


def test_render_managed_leaves_issuance_to_caddys_default_acme() -> None:
    doc = render(cfg(Route(["example.com"], ["127.0.0.1:9001"], "managed"), https_port=443))
    https = doc["apps"]["http"]["servers"][HTTPS_SERVER]
    assert https["routes"][0]["match"] == [{"host": ["example.com"]}]
    assert https["automatic_https"]["skip_certificates"] == []
    assert "tls" not in doc["apps"]  # no policy: Caddy's default issuers (ACME) apply
    location = doc["apps"]["http"]["servers"][HTTP_SERVER]["routes"][0]["handle"][0]["headers"]
    assert location["Location"] == ["https://{http.request.host}{http.request.uri}"]


def test_render_custom_loads_the_files_and_skips_automation() -> None:
    route = Route(["c.test"], ["127.0.0.1:9001"], "custom", "app7", "/c/cert.pem", "/c/key.pem")
    doc = render(cfg(route))
    assert doc["apps"]["tls"]["certificates"]["load_files"] == [
        {"certificate": "/c/cert.pem", "key": "/c/key.pem", "tags": ["shipyard-app-app7"]}
    ]
    assert "automation" not in doc["apps"]["tls"]
    https = doc["apps"]["http"]["servers"][HTTPS_SERVER]
    assert https["automatic_https"]["skip_certificates"] == ["c.test"]


def test_render_mixed_modes_bind_host_health_and_empty_upstreams() -> None:
    config = ProxyConfig(
        routes=[
            Route(["plain.test"], [], "off"),
            Route(["int.localhost"], ["127.0.0.1:9002"], "internal", health_path="/healthz"),
        ],
        http_port=8080,
        https_port=8443,
        bind_host="127.0.0.1",
    )
    before = copy.deepcopy(config)
    doc = render(config)
    assert config == before and render(config) == doc  # pure and deterministic
    json.dumps(doc)  # plain JSON, nothing Caddy could not read
    servers = doc["apps"]["http"]["servers"]
    assert servers[HTTP_SERVER]["listen"] == ["127.0.0.1:8080"]
    assert servers[HTTPS_SERVER]["listen"] == ["127.0.0.1:8443"]
    assert handler(servers[HTTP_SERVER])["status_code"] == 503  # nothing to route to yet
    assert handler(servers[HTTPS_SERVER])["health_checks"]["active"]["uri"] == "/healthz"
    assert [r["match"] for r in servers[HTTP_SERVER]["routes"][:2]] == [
        [{"host": ["plain.test"]}],
        [{"host": ["int.localhost"]}],
    ]


def test_render_rejects_incomplete_routes() -> None:
    with pytest.raises(Invalid) as custom:
        render(cfg(Route(["c.test"], ["127.0.0.1:9001"], "custom")))
    assert custom.value.details[0].field == "routes[0].cert_path"
    with pytest.raises(Invalid) as hosts:
        render(cfg(Route(["ok.test"], [], "off"), Route([], ["127.0.0.1:9001"], "off")))
    assert hosts.value.details[0].field == "routes[1].hostnames"


# --- against the real Caddy -------------------------------------------------------------------


def test_caddy_proxy_is_a_proxy(proxy: CaddyProxy) -> None:
    assert isinstance(proxy, CaddyProxy)
    _: Proxy = proxy  # checked by mypy: CaddyProxy satisfies the Protocol


async def get(config: ProxyConfig, host: str, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(
            f"http://127.0.0.1:{config.http_port}{path}", headers={"Host": host}
        )


async def test_hostname_routes_to_its_upstream(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig
) -> None:
    app = upstream("hello from app")
    config = make_config(Route(["app.test"], [app.dial], "off", app_id="a1"))
    await proxy.apply(config)
    response = await get(config, "app.test")
    assert (response.status_code, response.text) == (200, "hello from app")
    loaded = await proxy.current()
    assert loaded["admin"]["listen"] == proxy.admin_address
    assert handler(loaded["apps"]["http"]["servers"][HTTP_SERVER])["upstreams"] == [
        {"dial": app.dial}
    ]


async def test_unknown_host_gets_no_upstream_answer(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig
) -> None:
    app = upstream("hello from app")
    config = make_config(Route(["app.test"], [app.dial], "off"))
    await proxy.apply(config)
    response = await get(config, "other.test")
    assert response.status_code == 404
    assert "hello from app" not in response.text


class RetryBeforeResponse(httpx.AsyncBaseTransport):
    """Retries a GET once when the connection closed before any response, as browsers do."""

    # RFC 9112 9.3.1: a server may close an idle keep-alive connection at any time, and clients
    # retry idempotent requests that got no response. Caddy does exactly that to the idle
    # connections of the old configuration on every reload; httpx alone does not retry.
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.retried: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            if request.method != "GET":
                raise
            self.retried.append(time.monotonic())
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_switch_upstreams_under_load_without_failed_requests(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig
) -> None:
    old, new = upstream("A", slow_seconds=1.5), upstream("B")
    before = make_config(Route(["app.test"], [old.dial], "off"))
    after = make_config(Route(["app.test"], [new.dial], "off"))
    await proxy.apply(before)
    url = f"http://127.0.0.1:{before.http_port}"
    results: list[tuple[float, str]] = []
    failures: list[str] = []
    transports: list[RetryBeforeResponse] = []
    end = time.monotonic() + 3.0

    async def worker(keep_alive: bool) -> None:
        # Keep-alive clients reuse connections across the reload; the others open one per
        # request, so every request also exercises the listener handover.
        transport = RetryBeforeResponse() if keep_alive else None
        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        async with httpx.AsyncClient(
            base_url=url, headers={"Host": "app.test"}, timeout=10, limits=limits,
            transport=transport,
        ) as client:  # fmt: skip
            if transport is not None:
                transports.append(transport)
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    response = await client.get("/")
                except httpx.HTTPError as exc:
                    failures.append(f"keep_alive={keep_alive} at {started:.3f}: {exc!r}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text!r}")
                results.append((started, response.text))

    async def in_flight() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, headers={"Host": "app.test"}) as client:
            return await client.get("/slow", timeout=10)

    async def switch() -> tuple[float, float]:
        await asyncio.sleep(1.0)
        started = time.monotonic()
        await proxy.apply(after)
        return started, time.monotonic()

    # Read here, after the caddy_binary fixture ran scripts/ensure-caddy.
    migrates = MIGRATE_REQ.exists() and MIGRATE_REQ.read_text().strip() == "1"
    slow = asyncio.create_task(in_flight())
    switching = asyncio.create_task(switch())
    await asyncio.gather(
        *(worker(keep_alive=True) for _ in range(4)),
        *(worker(keep_alive=False) for _ in range(2 if migrates else 0)),
    )
    switch_started, switch_done = await switching
    # A request the old configuration had accepted finishes on the old upstream.
    slow_response = await slow
    assert (slow_response.status_code, slow_response.text) == (200, "A")
    assert failures == [], (switch_started, switch_done, failures)
    assert len(results) > 200
    assert any(body == "A" for started, body in results if started < switch_started)
    # Only what was already on its way when /load returned may still see the old upstream.
    late = [body for started, body in results if started > switch_done + 0.25]
    assert late and set(late) == {"B"}
    retried = [t for transport in transports for t in transport.retried]
    assert all(switch_started - 0.1 <= t <= switch_done + 1.0 for t in retried), retried
    assert (await get(after, "app.test")).text == "B"


async def https_get(port: int, host: str, ca_file: Path) -> httpx.Response:
    """GET over TLS to 127.0.0.1 with ``host`` as SNI and Host, verified against ``ca_file``."""
    context = ssl.create_default_context(cafile=str(ca_file))
    async with httpx.AsyncClient(verify=context, timeout=10) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                return await client.get(
                    f"https://127.0.0.1:{port}/",
                    headers={"Host": host},
                    extensions={"sni_hostname": host},
                )
            except httpx.ConnectError:
                # Caddy issues the certificate just after the load; the handshake fails until then.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_tls_internal_is_served_with_caddys_local_ca(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig
) -> None:
    app = upstream("secure hello")
    config = make_config(Route(["app.localhost"], [app.dial], "internal", app_id="a1"))
    await proxy.apply(config)
    # The local CA lives in Shipyard's data dir, not in the system trust store.
    assert proxy.local_ca_root.is_relative_to(proxy.data_dir)
    assert proxy.local_ca_root.exists()
    response = await https_get(config.https_port, "app.localhost", proxy.local_ca_root)
    assert (response.status_code, response.text) == (200, "secure hello")
    redirect = await get(config, "app.localhost", "/x?y=1")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"https://app.localhost:{config.https_port}/x?y=1"


def write_certificate(directory: Path, hostname: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for ``hostname``: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("test ca", "test ca", ca_key, ca_key, ca=True)
    cert = build(hostname, "test ca", key, ca_key, ca=False)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_tls_custom_serves_the_loaded_certificate(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig, tmp_path: Path
) -> None:
    app = upstream("custom hello")
    ca, cert, key = write_certificate(tmp_path, "secure.test")
    config = make_config(
        Route(["secure.test"], [app.dial], "custom", "a2", cert_path=str(cert), key_path=str(key))
    )
    await proxy.apply(config)
    response = await https_get(config.https_port, "secure.test", ca)
    assert (response.status_code, response.text) == (200, "custom hello")


async def test_rejected_config_raises_and_the_previous_one_keeps_serving(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig, tmp_path: Path
) -> None:
    app = upstream("still here")
    good = make_config(Route(["app.test"], [app.dial], "off"))
    await proxy.apply(good)
    missing = tmp_path / "missing"
    bad = make_config(
        Route(["app.test"], [app.dial], "off"),
        Route(
            ["b.test"], [app.dial], "custom", cert_path=f"{missing}.crt", key_path=f"{missing}.key"
        ),
    )
    with pytest.raises(ProxyRejected) as rejected:
        await proxy.apply(bad)
    assert "Caddy rejected" in rejected.value.message
    assert f"{missing}.crt" in rejected.value.message  # Caddy's own reason is passed on
    assert rejected.value.status == 502
    response = await get(good, "app.test")
    assert (response.status_code, response.text) == (200, "still here")
    assert "tls" not in (await proxy.current())["apps"]
    # The rejected config is not remembered: a restart brings back the good one.
    os.kill(proxy.pid or 0, signal.SIGKILL)
    await wait_dead(proxy)
    await proxy.ensure_running()
    assert (await get(good, "app.test")).text == "still here"


async def wait_dead(proxy: CaddyProxy) -> None:
    deadline = time.monotonic() + 5
    while proxy.running:
        assert time.monotonic() < deadline, "caddy did not die"
        await asyncio.sleep(0.02)


async def test_killed_child_is_restarted_with_the_last_config(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig
) -> None:
    app = upstream("back again")
    config = make_config(Route(["app.test"], [app.dial], "off"))
    await proxy.apply(config)
    first_pid = proxy.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await wait_dead(proxy)
    with pytest.raises(httpx.ConnectError):
        await get(config, "app.test")
    await proxy.ensure_running()
    assert proxy.running and proxy.pid != first_pid
    response = await get(config, "app.test")
    assert (response.status_code, response.text) == (200, "back again")
    await proxy.ensure_running()  # already running: nothing changes
    assert proxy.pid is not None and proxy.pid != first_pid


async def test_unowned_proxy_only_talks_to_the_admin_api(
    proxy: CaddyProxy, upstream: StartUpstream, make_config: MakeConfig, tmp_path: Path
) -> None:
    app = upstream("via unowned")
    external = CaddyProxy(proxy.admin_address, tmp_path / "unowned", owned=False)
    await external.ensure_running()
    config = make_config(Route(["app.test"], [app.dial], "off"))
    await external.apply(config)
    assert (await get(config, "app.test")).text == "via unowned"
    await external.stop()  # not ours to stop
    assert proxy.running and not external.running
    assert not (tmp_path / "unowned").exists()

    nobody = CaddyProxy(f"127.0.0.1:{free_port()}", tmp_path, owned=False, start_timeout=0.3)
    with pytest.raises(ProxyUnavailable):
        await nobody.ensure_running()
    with pytest.raises(ProxyUnavailable):
        await nobody.apply(config)


async def test_a_caddy_left_behind_on_the_admin_address_is_replaced(
    proxy: CaddyProxy, caddy_binary: str, tmp_path: Path
) -> None:
    # As after a Shipyard crash: the old child still holds the admin address.
    successor = CaddyProxy(proxy.admin_address, tmp_path / "next", caddy_binary=caddy_binary)
    try:
        await successor.ensure_running()
        await wait_dead(proxy)
        assert successor.running
        assert (await successor.current())["admin"]["listen"] == proxy.admin_address
    finally:
        await successor.stop()
