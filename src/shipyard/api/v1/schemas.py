"""Wire shapes of /api/v1, as the Rustploy contract defines them (plus optional extras)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Request(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error instead of silently ignored."""

    model_config = ConfigDict(extra="forbid")


class HealthResponse(BaseModel):
    status: str = "ok"
    version: str


class ApiErrorDetail(BaseModel):
    field: str
    message: str


class ApiError(BaseModel):
    code: str
    message: str
    details: list[ApiErrorDetail]


class ApiErrorResponse(BaseModel):
    error: ApiError


# --- auth ---------------------------------------------------------------------------------


class AuthLoginRequest(Request):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class AuthSessionResponse(BaseModel):
    user_id: str
    email: str
    role: str
    session_expires_at_unix_ms: int = Field(
        description="When the session ends; for a token without expiry, 0."
    )


class PasswordResetRequest(Request):
    email: str = Field(max_length=320)


class PasswordResetRequestedResponse(BaseModel):
    accepted: bool
    reset_token: str = Field(
        description="Always empty: the token is mailed to the account (or, without SMTP, written "
        "to the server log), never returned to the caller."
    )
    expires_at_unix_ms: int


class PasswordResetConfirmRequest(Request):
    reset_token: str = Field(max_length=256)
    new_password: str = Field(max_length=1024)


class PasswordResetConfirmedResponse(BaseModel):
    accepted: bool


# --- users --------------------------------------------------------------------------------


class CreateUserRequest(Request):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    role: Literal["admin", "member"] = "member"


class UserSummary(BaseModel):
    id: str
    email: str
    role: str
    created_at_unix_ms: int
    last_login_at_unix_ms: int | None = None


class UserListResponse(BaseModel):
    items: list[UserSummary]


# --- tokens -------------------------------------------------------------------------------


class CreateTokenRequest(Request):
    name: str = Field(max_length=128)
    scopes: list[str] = Field(max_length=3)
    expires_in_seconds: int | None = None
    kind: Literal["personal", "service"] = "personal"
    app_id: str | None = Field(default=None, description="Bind the token to one app.")


class TokenSummary(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at_unix_ms: int
    expires_at_unix_ms: int | None = None
    revoked_at_unix_ms: int | None = None
    last_used_at_unix_ms: int | None = None
    kind: str
    prefix: str
    app_id: str | None = None


class TokenListResponse(BaseModel):
    items: list[TokenSummary]


class CreateTokenResponse(BaseModel):
    token: str
    summary: TokenSummary


# --- apps ---------------------------------------------------------------------------------


class RepositoryRef(Request):
    provider: str = Field(default="git", max_length=32, examples=["github"])
    owner: str = Field(default="", max_length=255)
    name: str = Field(default="", max_length=255)
    clone_url: str | None = Field(default=None, max_length=2048)
    default_branch: str | None = Field(default=None, max_length=255)


class SourceRef(Request):
    branch: str | None = Field(default=None, max_length=255)
    commit_sha: str | None = Field(default=None, max_length=64)


class RuntimeConfig(Request):
    port: int | None = Field(default=None, ge=1, le=65535)
    healthcheck_path: str | None = Field(default=None, max_length=512)


class DependencyProfile(Request):
    postgres: bool | None = None
    redis: bool | None = None


BuildMode = Literal["auto", "dockerfile", "compose"]


class AppSettingsFields(Request):
    server_id: str | None = None
    repository: RepositoryRef | None = None
    source: SourceRef | None = None
    image_ref: str | None = Field(default=None, max_length=512)
    compose_file: str | None = Field(default=None, max_length=512)
    build_mode: BuildMode | None = None
    runtime: RuntimeConfig | None = None
    dependency_profile: DependencyProfile | None = None


class CreateAppRequest(AppSettingsFields):
    name: str = Field(max_length=63)


class UpdateAppRequest(AppSettingsFields):
    name: str | None = Field(default=None, max_length=63)


class App(BaseModel):
    id: str
    name: str
    created_at_unix_ms: int
    updated_at_unix_ms: int
    owner_id: str | None = None
    server_id: str | None = None
    source_type: str | None = None
    repository: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    image_ref: str | None = None
    compose_file: str | None = None
    build_mode: str | None = None
    runtime: dict[str, Any] | None = None
    state: Literal["running", "stopped"] | None = None


class AppListResponse(BaseModel):
    items: list[App]


class DetectionResult(BaseModel):
    framework: str
    package_manager: str
    lockfile: str | None = None
    build_profile: str
    dockerfile_present: bool


class EffectiveAppConfigResponse(BaseModel):
    app_id: str
    repository: dict[str, Any]
    source: dict[str, Any]
    build_mode: BuildMode
    detection: DetectionResult
    compose: dict[str, Any] | None = None
    dependency_profile: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None


# --- env ----------------------------------------------------------------------------------


class EnvVarItem(Request):
    key: str
    value: str


class UpsertAppEnvVarRequest(Request):
    """Either one variable (``key`` and ``value``) or several at once (``items``), atomically."""

    key: str | None = None
    value: str | None = None
    items: list[EnvVarItem] | None = None

    @model_validator(mode="after")
    def one_form(self) -> UpsertAppEnvVarRequest:
        single = self.key is not None or self.value is not None
        if single and self.items is not None:
            raise ValueError("send either key and value, or items, not both")
        if self.items is None and (self.key is None or self.value is None):
            raise ValueError("send key and value (one variable) or items (several)")
        return self


class AppEnvVarSummary(BaseModel):
    app_id: str
    key: str
    value: str
    updated_at_unix_ms: int
    masked: bool


class AppEnvVarListResponse(BaseModel):
    items: list[AppEnvVarSummary]


# --- domains ------------------------------------------------------------------------------


class CreateDomainRequest(Request):
    domain: str = Field(max_length=300)
    tls_mode: Literal["managed", "custom"] | None = None
    cert_path: str | None = Field(default=None, max_length=1024)
    key_path: str | None = Field(default=None, max_length=1024)


class DomainSummary(BaseModel):
    id: str
    app_id: str
    domain: str
    tls_mode: str
    cert_path: str | None = None
    key_path: str | None = None
    created_at_unix_ms: int


class DomainListResponse(BaseModel):
    items: list[DomainSummary]


# --- deployments --------------------------------------------------------------------------

DeploymentStatus = Literal["queued", "deploying", "retrying", "healthy", "failed"]


class CreateDeploymentRequest(Request):
    source_ref: str | None = Field(default=None, max_length=255)
    image_ref: str | None = Field(default=None, max_length=512)
    commit_sha: str | None = Field(default=None, max_length=64)
    simulate_failures: int | None = Field(default=None, ge=0, description="Accepted, ignored.")
    force_rebuild: bool | None = None


class CreateDeploymentAccepted(BaseModel):
    deployment_id: str
    status: DeploymentStatus
    queued_at_unix_ms: int


AppAction = Literal["stop", "start", "restart"]
AppState = Literal["running", "stopped"]


class AppActionAccepted(CreateDeploymentAccepted):
    """A queued stop, start or restart: a deployment run to follow like any other."""

    action: AppAction
    state: AppState  # what the app will be once the run succeeds


class DeploymentStep(BaseModel):
    name: str
    status: str
    message: str | None = None
    started_at_unix_ms: int | None = None
    finished_at_unix_ms: int | None = None


class Deployment(BaseModel):
    id: str
    app_id: str
    source_ref: str | None = None
    image_ref: str | None = None
    commit_sha: str | None = None
    status: DeploymentStatus
    last_error: str | None = None
    created_at_unix_ms: int
    updated_at_unix_ms: int
    trigger: str | None = None
    steps: list[DeploymentStep] | None = None


class DeploymentListResponse(BaseModel):
    items: list[Deployment]


class DeploymentLogsResponse(BaseModel):
    deployment_id: str
    logs: str


class RollbackRequest(Request):
    deployment_id: str | None = Field(
        default=None, description="Roll back to this deployment's release."
    )


# --- import and GitHub --------------------------------------------------------------------


class ImportAppRequest(Request):
    repository: RepositoryRef
    source: SourceRef | None = None
    build_mode: BuildMode | None = None
    runtime: RuntimeConfig | None = None
    dependency_profile: DependencyProfile | None = None
    name: str | None = Field(
        default=None,
        max_length=63,
        description="The app's name; default: the repository's name (with -2, -3... if taken).",
    )
    server_id: str | None = None


class ComposeServiceSummary(BaseModel):
    name: str
    image: str | None = None
    build: bool
    depends_on: list[str]
    ports: list[str]
    profiles: list[str]


class ComposeSummary(BaseModel):
    file: str
    app_service: str | None = None
    services: list[ComposeServiceSummary]


class NextAction(BaseModel):
    action_type: str
    deploy_endpoint: str


class ImportAppResponse(BaseModel):
    app: App
    detection: DetectionResult
    compose: ComposeSummary | None = Field(
        default=None, description="Left out when the repository has no compose file."
    )
    next_action: NextAction
    commit_sha: str | None = Field(default=None, description="The commit that was inspected.")
    manifest: dict[str, Any] | None = Field(
        default=None, description="What shipyard.yaml (or rustploy.yaml) said; null without one."
    )


class GithubConnectRequest(Request):
    owner: str = Field(max_length=39)
    repo: str = Field(max_length=100)
    branch: str = Field(max_length=255)
    installation_id: int | None = None
    webhook_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The secret of the GitHub webhook; stored encrypted, never shown. "
        "Left out: the stored one is kept.",
    )


class GithubIntegrationSummary(BaseModel):
    app_id: str
    owner: str
    repo: str
    branch: str
    installation_id: int | None = None
    webhook_secret_set: bool = Field(description="Whether a webhook secret is stored.")


class GithubWebhookAccepted(BaseModel):
    accepted: bool
    matched_integrations: int
    queued_deployments: int
    reason: str | None = Field(default=None, description="Why nothing was queued, if so.")
