"""Settings: one object, read from the environment with the SHIPYARD_ prefix."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator
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
    # How long a verified bearer token is trusted without a query (changes made through this
    # process take effect at once; see tokens/credential_cache.py). 0 turns the cache off.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)

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

    jwt_ttl_seconds: int = Field(default=24 * 3600, gt=0)

    # CI engine
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    ci_stage_concurrency: int = Field(default=4, ge=1, le=64)
    ci_cancel_grace_seconds: float = Field(default=5.0, ge=0)
    ci_deadline_seconds: int = Field(default=6 * 3600, gt=0)
    rate_limit_rustci: str = "100/minute;1000/hour"

    # GitHub OAuth (RustCI's /v1/auth/github); the URLs are settings so a GitHub Enterprise
    # server, or a stand-in provider in tests, can be used.
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 (a URL)
    github_api_url: str = "https://api.github.com"

    # Deployments
    deploy_deadline_seconds: int = Field(default=30 * 60, gt=0)
    releases_keep: int = Field(default=5, ge=1)
    drain_seconds: float = Field(default=2.0, ge=0)
    stop_grace_seconds: float = Field(default=10.0, ge=0)
    runtime: str = Field(default="auto", pattern="^(auto|docker|process)$")
    base_image: str = "local/python:3.11"

    # Proxy: Shipyard starts and owns a Caddy, or talks to the admin API of one you run.
    proxy_enabled: bool = True
    caddy_admin_address: str = "127.0.0.1:2019"
    caddy_owned: bool = True
    caddy_binary: str = "caddy"
    proxy_http_port: int = Field(default=80, ge=1, le=65535)
    proxy_https_port: int = Field(default=443, ge=1, le=65535)
    proxy_bind_host: str = ""
    # TLS for domains: managed (ACME), internal (Caddy's local CA), off (plain HTTP).
    proxy_tls: str = Field(default="managed", pattern="^(managed|internal|off)$")
    # Apps without a domain get <app>.<local_domain>, served with Caddy's internal CA.
    local_domain: str = "localhost"

    metrics_public: bool = False
    trusted_proxies: str = "127.0.0.1"
    log_level: str = "info"
    # asyncio's own loop starts subprocesses with vfork/posix_spawn; uvloop forks the whole
    # server for every CI step and git command, which made each step ~3x slower
    # (bench/RESULTS-ci.md). Set "uvloop" to trade that for uvloop's faster HTTP handling.
    event_loop: str = Field(default="asyncio", pattern="^(asyncio|uvloop|auto)$")

    @field_validator(
        "rate_limit_read",
        "rate_limit_write",
        "rate_limit_auth",
        "rate_limit_webhook",
        "rate_limit_rustci",
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate limit such as '100/minute;1000/hour'"
            ) from exc
        return value

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
