"""The long-lived objects one Shipyard process shares: settings, database, keys, mail, limits."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.apps import repository as apps_repository
from shipyard.auth.passwords import configure_hasher
from shipyard.auth.service import BootstrapState
from shipyard.config import Settings
from shipyard.db.engine import Database
from shipyard.db.migrate import upgrade_to_head
from shipyard.drivers.mail import LogMailer, Mailer, SmtpMailer
from shipyard.engine import recovery
from shipyard.engine.proxy_sync import ProxySync
from shipyard.engine.runtime import build_worker
from shipyard.engine.runtime import runtimes as make_runtimes
from shipyard.engine.worker import Worker
from shipyard.events.bus import EventBus
from shipyard.ratelimit.limiter import RateLimiter
from shipyard.secrets.keyring import Keyring, load_or_create_signing_key
from shipyard.servers import service as servers_service
from shipyard.tokens import credential_cache
from shipyard.users import repository as users_repository
from shipyard.users.service import create_user

if TYPE_CHECKING:
    from shipyard.drivers.runtime.base import Runtime

log = logging.getLogger("shipyard")


@dataclass
class AppContext:
    settings: Settings
    database: Database
    keyring: Keyring
    mailer: Mailer
    limiter: RateLimiter | None
    signing_key: bytes
    bus: EventBus = field(default_factory=EventBus)
    bootstrap: BootstrapState = field(default_factory=BootstrapState)
    worker: Worker | None = None
    proxy: ProxySync = field(init=False)
    # Set when the server begins to shut down: long-lived responses (log streams) end then.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    _runtimes: dict[str, Runtime] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.proxy = ProxySync(self.settings)

    def runtimes(self) -> dict[str, Runtime]:
        """The release runtimes (docker, process), made on first use and shared by the engine
        and the runtime log stream."""
        if self._runtimes is None:
            self._runtimes = make_runtimes(self)
        return self._runtimes

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        configure_hasher(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )
        mailer: Mailer = (
            SmtpMailer(
                settings.smtp_host,
                settings.smtp_port,
                settings.mail_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
            if settings.smtp_host
            else LogMailer()
        )
        limiter = (
            RateLimiter(
                settings.rate_limit_storage_uri,
                {
                    "read": settings.rate_limit_read,
                    "write": settings.rate_limit_write,
                    "auth": settings.rate_limit_auth,
                    "webhook": settings.rate_limit_webhook,
                    "rustci": settings.rate_limit_rustci,
                },
            )
            if settings.rate_limit_enabled
            else None
        )
        return cls(
            settings=settings,
            database=Database(settings.resolved_database_url),
            keyring=Keyring.load_or_create(settings.resolved_secret_key_file),
            mailer=mailer,
            limiter=limiter,
            signing_key=load_or_create_signing_key(settings.resolved_data_dir / "jwt.key"),
        )

    async def start(self, *, engine: bool = False) -> None:
        """Migrate the schema, make the built-in rows and the first admin if asked to; with
        ``engine``, start the workers that run queued work."""
        await upgrade_to_head(self.database)
        credential_cache.cache.ttl_seconds = self.settings.auth_cache_seconds
        async with self.database.transaction() as session:
            await servers_service.ensure_local_server(session)
            email, password = self.settings.admin_email, self.settings.admin_password
            if email and password and not await users_repository.any_exists(session):
                await create_user(session, email=email, password=password, role="admin")
                log.info("created the first admin %s", email)
        if engine:
            self.worker = build_worker(self)
            await self.worker.start()
            await self.restore_routes()
            await self.recover_instances()

    async def restore_routes(self) -> None:
        """After a restart, the proxy again routes every live release (the apps kept running)."""
        async with self.database.reading() as session:
            if await apps_repository.any_live(session):
                try:
                    await self.proxy.apply(session)
                except Exception:  # the API must come up even if the proxy cannot (yet)
                    log.exception("could not restore the proxy routes")

    async def recover_instances(self) -> None:
        """After a restart (or a reboot), live releases whose instances died are started again
        by the engine; see engine/recovery.py."""
        try:
            if await recovery.schedule(self.database):
                self.wake_engine()
        except Exception:  # the API must come up even so
            log.exception("could not queue the recovery of app instances")

    def wake_engine(self) -> None:
        """Work was queued in this process: start it now rather than at the next poll."""
        if self.worker is not None:
            self.worker.wake()

    async def stop(self) -> None:
        self.closing.set()
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        await self.proxy.stop()
        await self.database.dispose()
