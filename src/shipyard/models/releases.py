"""Releases: immutable built versions of an app, and the app's GitHub connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db.base import Base


class Release(Base):
    """One built version: artifact (image or build dir), commit, settings and env snapshot."""

    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    runtime: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # built | live | retired | pruned
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    source_ref: Mapped[str | None] = mapped_column(String(255))
    artifact_ref: Mapped[str | None] = mapped_column(String(1024))
    start_command: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int] = mapped_column(Integer)
    healthcheck: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    env_ciphertext: Mapped[str | None] = mapped_column(Text)  # the env it runs with, encrypted
    instances: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # [{id, upstream}]
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    live_since_ms: Mapped[int | None] = mapped_column(BigInteger)


class GithubIntegration(Base):
    __tablename__ = "github_integrations"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    repo: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str] = mapped_column(String(255))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    webhook_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
