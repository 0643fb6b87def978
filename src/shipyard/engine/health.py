"""The health gate: a new instance must answer (an HTTP path with 2xx/3xx, or an open TCP port)
``threshold`` times in a row before it gets traffic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

from shipyard.drivers.runtime.base import LogFn


def _httpx() -> ModuleType:
    """httpx, imported on first use: importing it pulls in rich and pygments (its CLI), about
    10 MB the idle server should not carry."""
    import httpx

    return httpx


TCP_CLOSE_SECONDS = 0.1


@dataclass(frozen=True)
class HealthCheck:
    path: str | None = None  # None: a TCP connect
    interval_seconds: float = 1.0
    timeout_seconds: float = 5.0
    threshold: int = 1
    deadline_seconds: float = 60.0


async def _probe(upstream: str, check: HealthCheck, client: httpx.AsyncClient) -> str | None:
    """None when healthy, else why not."""
    host, _, port = upstream.rpartition(":")
    if check.path is None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), check.timeout_seconds
            )
        except (OSError, TimeoutError) as exc:
            return f"TCP {upstream}: {exc or 'timed out'}"
        # Docker's userland proxy accepts a connection on a published port even when nothing
        # listens in the container yet, and then closes it at once: that is not healthy.
        try:
            closed = await asyncio.wait_for(reader.read(1), TCP_CLOSE_SECONDS) == b""
        except TimeoutError:
            closed = False  # open and waiting for us to speak: something listens
        except OSError:
            closed = True
        finally:
            writer.close()
        return f"TCP {upstream}: connection closed at once (not listening yet)" if closed else None
    try:
        r = await client.get(f"http://{upstream}{check.path}", timeout=check.timeout_seconds)
    except _httpx().HTTPError as exc:
        return f"GET {check.path}: {exc.__class__.__name__}"
    return None if r.status_code < 400 else f"GET {check.path}: HTTP {r.status_code}"


async def wait_healthy(upstream: str, check: HealthCheck, log: LogFn) -> str | None:
    """Probe until ``threshold`` consecutive successes (None) or the deadline (the last reason)."""
    deadline = time.monotonic() + check.deadline_seconds
    streak = 0
    reason: str | None = "never probed"
    async with _httpx().AsyncClient() as client:
        while time.monotonic() < deadline:
            reason = await _probe(upstream, check, client)
            streak = streak + 1 if reason is None else 0
            if streak >= check.threshold:
                await log(f"healthy: {upstream} answered {streak} time(s)")
                return None
            if reason is not None:
                await log(f"not healthy yet: {reason}")
            # Poll fast until the first success, then at the configured interval.
            await asyncio.sleep(
                min(check.interval_seconds, 0.2) if streak == 0 else check.interval_seconds
            )
    return reason
