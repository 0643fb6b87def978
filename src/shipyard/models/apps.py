"""Apps with their source settings, encrypted env vars and domains."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db.base import Base


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id"), index=True)
    # Source: where releases come from. git (repository + branch), image, or compose.
    source_type: Mapped[str | None] = mapped_column(String(16))
    repo_provider: Mapped[str | None] = mapped_column(String(32))
    repo_owner: Mapped[str | None] = mapped_column(String(255))
    repo_name: Mapped[str | None] = mapped_column(String(255))
    clone_url: Mapped[str | None] = mapped_column(String(2048))
    default_branch: Mapped[str | None] = mapped_column(String(255))
    branch: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    image_ref: Mapped[str | None] = mapped_column(String(512))
    compose_file: Mapped[str | None] = mapped_column(String(512))
    build_mode: Mapped[str] = mapped_column(String(16), default="auto")
    port: Mapped[int | None] = mapped_column(Integer)
    healthcheck_path: Mapped[str | None] = mapped_column(String(512))
    dependency_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    live_release_id: Mapped[str | None] = mapped_column(String(36))
    # What the live release should be doing: running, or stopped by a user (no instances, and
    # the proxy answers 503). A deployment makes it running again.
    state: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class AppEnvVar(Base):
    """One env var; the value is ciphertext made with the key file outside the database."""

    __tablename__ = "app_env_vars"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value_ciphertext: Mapped[str] = mapped_column(Text)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class Domain(Base):
    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    tls_mode: Mapped[str] = mapped_column(String(16))
    cert_path: Mapped[str | None] = mapped_column(String(1024))
    key_path: Mapped[str | None] = mapped_column(String(1024))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
