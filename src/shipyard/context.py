"""The long-lived objects one Shipyard process shares: settings, database, keys, mail, limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shipyard.auth.passwords import configure_hasher
from shipyard.auth.service import BootstrapState
from shipyard.config import Settings
from shipyard.db.engine import Database
from shipyard.db.migrate import upgrade_to_head
from shipyard.drivers.mail import LogMailer, Mailer, SmtpMailer
from shipyard.ratelimit.limiter import RateLimiter
from shipyard.secrets.keyring import Keyring
from shipyard.servers import service as servers_service
from shipyard.users import repository as users_repository
from shipyard.users.service import create_user

log = logging.getLogger("shipyard")


@dataclass
class AppContext:
    settings: Settings
    database: Database
    keyring: Keyring
    mailer: Mailer
    limiter: RateLimiter | None
    bootstrap: BootstrapState = field(default_factory=BootstrapState)

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
        )

    async def start(self) -> None:
        """Migrate the schema, make the built-in rows, and the first admin if asked to."""
        await upgrade_to_head(self.database)
        async with self.database.transaction() as session:
            await servers_service.ensure_local_server(session)
            email, password = self.settings.admin_email, self.settings.admin_password
            if email and password and not await users_repository.any_exists(session):
                await create_user(session, email=email, password=password, role="admin")
                log.info("created the first admin %s", email)

    async def stop(self) -> None:
        await self.database.dispose()
