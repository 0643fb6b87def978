"""RustCI request bodies (responses are built by translate.py in the documented shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Request):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class UpdateMeRequest(Request):
    email: str | None = Field(default=None, max_length=320)


class CreateWorkspaceRequest(Request):
    name: str = Field(max_length=128)
    repository_url: str = Field(max_length=2048)
    branch: str | None = Field(default=None, max_length=255)
    webhook_secret: str | None = Field(default=None, max_length=256)


class UpdateWorkspaceRequest(Request):
    name: str | None = Field(default=None, max_length=128)
    repository_url: str | None = Field(default=None, max_length=2048)
    branch: str | None = Field(default=None, max_length=255)
    status: str | None = None
    webhook_secret: str | None = Field(default=None, max_length=256)


class SecretsRequest(Request):
    secrets: dict[str, str]


class CreatePipelineRequest(Request):
    # Kept loose here: the pipeline validator names every problem with its field path.
    name: Any = None
    stages: Any = None
    variables: Any = None
    triggers: Any = None


class StartExecutionRequest(Request):
    trigger: str = "manual"
    branch: str | None = None
    commit_sha: str | None = None
    variables: dict[str, Any] | None = None
