"""What a running app prints: the output of its live release's instances, merged, with secret
values redacted, following the app across deployments, restarts, stops and starts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from shipyard.db.engine import Database
from shipyard.drivers.runtime.base import Instance, Runtime
from shipyard.engine.states import APP_STOPPED
from shipyard.env import service as env_service
from shipyard.models import App, Release
from shipyard.secrets.keyring import Keyring
from shipyard.secrets.redaction import Redactor

QUEUE_LINES = 10_000
RECHECK_SECONDS = 2.0  # how soon new instances (a deployment, a restart) are followed


@dataclass(frozen=True)
class Batch:
    """Lines since the previous batch; ``reset`` when they come from another release than the
    previous batch (or are the first); no lines and no reset: nothing happened for a while."""

    deployment_id: str | None
    lines: list[str]
    reset: bool


@dataclass(frozen=True)
class _Live:
    release_id: str
    deployment_id: str | None
    runtime: str
    instances: tuple[Instance, ...]


async def _live(database: Database, app_id: str) -> _Live | None:
    """The app's live release and its running instances, or None."""
    async with database.reading() as session:
        app = await session.get(App, app_id)
        if app is None or app.live_release_id is None:
            return None
        release = await session.get(Release, app.live_release_id)
        if release is None:
            return None
    recorded = [] if app.state == APP_STOPPED else (release.instances or [])
    instances = tuple(Instance(i["id"], release.id, i["upstream"]) for i in recorded)
    return _Live(release.id, release.deployment_id, release.runtime, instances)


async def _redactor(database: Database, keyring: Keyring, app_id: str, release_id: str) -> Redactor:
    """Masks the app's env var values and those of the env the release runs with, except the
    manifest's defaults (not secrets: masking them would hide ordinary words)."""
    async with database.reading() as session:
        app = await session.get(App, app_id)
        release = await session.get(Release, release_id)
        secrets = set((await env_service.decrypted_env(session, app_id, keyring)).values())
    if app is not None and release is not None and release.env_ciphertext:
        defaults = (app.manifest or {}).get("env") or {}
        snapshot = json.loads(keyring.decrypt(release.env_ciphertext))
        secrets |= {str(v) for k, v in snapshot.items() if str(defaults.get(k)) != str(v)}
    return Redactor(secrets)


async def follow(
    database: Database,
    keyring: Keyring,
    runtimes: dict[str, Runtime],
    app_id: str,
    *,
    tail: int,
    closing: asyncio.Event,
    quiet_seconds: float = 15.0,
) -> AsyncGenerator[Batch, None]:
    """Batches of the live instances' output (each starting with its last ``tail`` lines) until
    ``closing`` is set; an empty batch after ``quiet_seconds`` without output."""
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LINES)
    pumps: dict[str, asyncio.Task[None]] = {}
    live: _Live | None = None
    redact = Redactor(())
    first = True
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    try:
        while not closing.is_set():
            now = await _live(database, app_id)
            reset = first or _deployment(now) != _deployment(live)
            if now != live:
                if now is not None and (live is None or now.release_id != live.release_id):
                    redact = await _redactor(database, keyring, app_id, now.release_id)
                live = now
                runtime = runtimes.get(live.runtime) if live else None
                wanted = {i.id: i for i in (live.instances if live and runtime else ())}
                for gone in set(pumps) - set(wanted):
                    pumps.pop(gone).cancel()
                for instance_id, instance in wanted.items():
                    if instance_id not in pumps and runtime is not None:
                        pumps[instance_id] = asyncio.create_task(
                            _pump(runtime, instance, tail, queue)
                        )
            lines = await _collect(queue, RECHECK_SECONDS, closing)
            if lines or reset or loop.time() - quiet_since >= quiet_seconds:
                quiet_since = loop.time()
                yield Batch(_deployment(live), [redact(x) for x in lines], reset)
                first = False
    finally:
        for task in pumps.values():
            task.cancel()
        await asyncio.gather(*pumps.values(), return_exceptions=True)


def _deployment(live: _Live | None) -> str | None:
    return live.deployment_id if live else None


async def _pump(runtime: Runtime, instance: Instance, tail: int, queue: asyncio.Queue[str]) -> None:
    with contextlib.suppress(Exception):  # an instance that vanished just has no more output
        async for line in runtime.output(instance, tail=tail):
            await queue.put(line)


async def _collect(queue: asyncio.Queue[str], within: float, closing: asyncio.Event) -> list[str]:
    """The lines queued within ``within`` seconds: as soon as some arrive (and whatever
    follows at once), or none when the time is up or the server is closing."""
    lines: list[str] = []
    waiter = asyncio.ensure_future(queue.get())
    closed = asyncio.ensure_future(closing.wait())
    try:
        done, _ = await asyncio.wait(
            {waiter, closed}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            lines.append(waiter.result())
            await asyncio.sleep(0.05)  # let a burst of lines come as one event
            while not queue.empty() and len(lines) < QUEUE_LINES:
                lines.append(queue.get_nowait())
    finally:
        for future in (waiter, closed):
            future.cancel()
    return lines
