"""CI: workspaces (a repository and branch), their secrets, and pipelines of stages and steps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db.base import Base


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    repository_url: Mapped[str] = mapped_column(String(2048))
    branch: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    webhook_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class WorkspaceSecret(Base):
    __tablename__ = "workspace_secrets"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value_ciphertext: Mapped[str] = mapped_column(Text)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    variables: Mapped[dict[str, str]] = mapped_column(JSON)
    triggers: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))  # api | repository
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
