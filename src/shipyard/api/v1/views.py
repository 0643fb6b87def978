"""Pure functions from core rows to /api/v1 wire shapes."""

from __future__ import annotations

from typing import Any

from shipyard.api.v1 import schemas as w
from shipyard.env.service import EnvVarView
from shipyard.models import ApiToken, App, Domain, GithubIntegration, User

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": w.ApiErrorResponse, "description": text}
    for code, text in {
        400: "Invalid input; `details` names each field",
        401: "Missing, unknown, expired or revoked credential",
        403: "The credential lacks the scope this needs",
        404: "Not found (also for objects of other users)",
        429: "Rate limit exceeded; see Retry-After",
    }.items()
}


def app_json(row: App | Any) -> dict[str, Any]:
    """The App wire shape as a plain dict (lists skip model validation: they are hot paths)."""
    repository = None
    if row.clone_url or row.repo_name:
        repository = {
            "provider": row.repo_provider,
            "owner": row.repo_owner,
            "name": row.repo_name,
            "clone_url": row.clone_url,
            "default_branch": row.default_branch,
        }
    return {
        "id": row.id,
        "name": row.name,
        "created_at_unix_ms": row.created_at_ms,
        "updated_at_unix_ms": row.updated_at_ms,
        "owner_id": row.owner_id,
        "server_id": row.server_id,
        "source_type": row.source_type,
        "repository": repository,
        "source": {"branch": row.branch, "commit_sha": row.commit_sha},
        "image_ref": row.image_ref,
        "compose_file": row.compose_file,
        "build_mode": row.build_mode,
        "runtime": {"port": row.port, "healthcheck_path": row.healthcheck_path},
        # running or stopped (POST /apps/{id}/stop); null until a release is live
        "state": row.state if row.live_release_id else None,
    }


def app(row: App) -> w.App:
    return w.App(**app_json(row))


def token(row: ApiToken) -> w.TokenSummary:
    return w.TokenSummary(
        id=row.id,
        name=row.name,
        scopes=row.scopes.split(),
        created_at_unix_ms=row.created_at_ms,
        expires_at_unix_ms=row.expires_at_ms,
        revoked_at_unix_ms=row.revoked_at_ms,
        last_used_at_unix_ms=row.last_used_at_ms,
        kind=row.kind,
        prefix=row.prefix,
        app_id=row.app_id,
    )


def env_var(view: EnvVarView) -> w.AppEnvVarSummary:
    return w.AppEnvVarSummary(
        app_id=view.app_id,
        key=view.key,
        value=view.value,
        updated_at_unix_ms=view.updated_at_ms,
        masked=view.masked,
    )


def domain(row: Domain) -> w.DomainSummary:
    return w.DomainSummary(
        id=row.id,
        app_id=row.app_id,
        domain=row.hostname,
        tls_mode=row.tls_mode,
        cert_path=row.cert_path,
        key_path=row.key_path,
        created_at_unix_ms=row.created_at_ms,
    )


def user(row: User) -> w.UserSummary:
    return w.UserSummary(
        id=row.id,
        email=row.email,
        role=row.role,
        created_at_unix_ms=row.created_at_ms,
        last_login_at_unix_ms=row.last_login_at_ms,
    )


def github_integration(row: GithubIntegration) -> w.GithubIntegrationSummary:
    return w.GithubIntegrationSummary(
        app_id=row.app_id,
        owner=row.owner,
        repo=row.repo,
        branch=row.branch,
        installation_id=row.installation_id,
        webhook_secret_set=bool(row.webhook_secret_ciphertext),
    )
