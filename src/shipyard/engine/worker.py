"""Workers: claim jobs, run their handler while heartbeating the lease, retry with backoff.

On start the worker reconciles: leases held by processes on this host that no longer exist are
reclaimed at once (a crashed Shipyard), others when their lease lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from shipyard.db.engine import Database
from shipyard.engine import jobs
from shipyard.engine.jobs import ClaimedJob

log = logging.getLogger("shipyard.engine")

Handler = Callable[[ClaimedJob], Awaitable[None]]
LEASE_MS = 30_000
HEARTBEAT_SECONDS = 10.0
IDLE_POLL_SECONDS = 0.5
RECLAIM_SECONDS = 5.0


def _backoff_ms(attempt: int) -> int:
    return min(60_000, 1000 * 2 ** (attempt - 1))


def _dead_local_owners(owners: set[str], me: str) -> set[str]:
    """Owners on this host whose process is gone (or is this process under an older identity)."""
    host = socket.gethostname()
    dead = set()
    for owner in owners:
        owner_host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if owner_host != host or owner == me or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            dead.add(owner)
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.add(owner)
        except PermissionError:
            pass
    return dead


class Worker:
    def __init__(self, database: Database, *, concurrency: int = 4) -> None:
        self.database = database
        self.concurrency = concurrency
        self.identity = jobs.worker_identity()
        self.handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        """Called after enqueueing in this process, so the job starts without waiting for a poll."""
        self._wake.set()

    async def start(self) -> None:
        owners = await jobs.leased_owners(self.database)
        dead = _dead_local_owners(owners, self.identity)
        reclaimed = await jobs.reclaim_expired(self.database, dead_owners=dead)
        if reclaimed:
            log.warning("reclaimed %d job(s) left by a stopped Shipyard", reclaimed)
        self._tasks = [asyncio.create_task(self._loop(i)) for i in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._reclaimer()))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _reclaimer(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RECLAIM_SECONDS)
            try:
                if await jobs.reclaim_expired(self.database):
                    self.wake()
            except Exception:
                log.exception("reclaiming expired leases failed")

    async def _loop(self, index: int) -> None:
        kinds = list(self.handlers)
        while not self._stopping:
            try:
                job = await jobs.claim(self.database, self.identity, kinds, LEASE_MS)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                continue
            self._wake.set()  # there may be more: let an idle sibling look too
            await self._run(job)

    async def _run(self, job: ClaimedJob) -> None:
        beating = asyncio.create_task(self._heartbeat(job))
        try:
            await self.handlers[job.kind](job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s (%s) attempt %d failed", job.id, job.kind, job.attempt)
            state = await jobs.retry_or_bury(
                self.database, job, self.identity, repr(exc), _backoff_ms(job.attempt)
            )
            if state == jobs.QUEUED:
                self.wake()
        else:
            await jobs.finish(self.database, job.id, self.identity)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _heartbeat(self, job: ClaimedJob) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if not await jobs.heartbeat(self.database, job.id, self.identity, LEASE_MS):
                    log.warning("lost the lease of job %s", job.id)
                    return
            except Exception:
                log.exception("heartbeat of job %s failed", job.id)
