"""Settings: one object, read from the environment with the SHIPYARD_ prefix."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything Shipyard can be configured with; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    data_dir: Path = Field(default=Path("./shipyard-data"))
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key_file: Path | None = None
    public_base_url: str | None = None

    admin_email: str | None = None
    admin_password: str | None = None

    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 "low memory" profile).
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)

    session_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    password_reset_ttl_seconds: int = Field(default=30 * 60, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "shipyard@localhost"

    rate_limit_enabled: bool = True
    rate_limit_storage_uri: str = "memory://"
    rate_limit_read: str = "600/minute"
    rate_limit_write: str = "120/minute"
    rate_limit_auth: str = "10/minute"
    rate_limit_webhook: str = "300/minute"

    metrics_public: bool = False
    trusted_proxies: str = "127.0.0.1"
    log_level: str = "info"

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Users paste ordinary URLs; the async drivers are an implementation detail.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'shipyard.db'}"

    @property
    def resolved_secret_key_file(self) -> Path:
        if self.secret_key_file:
            return self.secret_key_file.expanduser().resolve()
        return self.resolved_data_dir / "secret.key"

    @property
    def cookie_secure(self) -> bool:
        return bool(self.public_base_url and self.public_base_url.startswith("https://"))
