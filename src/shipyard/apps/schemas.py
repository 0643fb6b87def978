"""Core descriptions of an app's settings, shared by every dialect."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

BuildMode = Literal["auto", "dockerfile", "compose"]
SourceType = Literal["git", "image", "compose"]


class RepositorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = "git"
    owner: str = ""
    name: str = ""
    clone_url: str | None = None
    default_branch: str | None = None


class AppSpec(BaseModel):
    """What a caller may set on an app. ``None`` means "not given" in an update."""

    name: str | None = None
    server_id: str | None = None
    source_type: SourceType | None = None
    repository: RepositorySpec | None = None
    branch: str | None = None
    commit_sha: str | None = None
    image_ref: str | None = None
    compose_file: str | None = None
    build_mode: BuildMode | None = None
    port: int | None = None
    healthcheck_path: str | None = None
    dependency_profile: dict[str, Any] | None = None
