"""Rules for apps: names, sources, ownership, and the effective build configuration."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shipyard.apps import repository
from shipyard.apps.schemas import AppSpec
from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.drivers import git
from shipyard.engine import jobs, proxy_sync
from shipyard.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from shipyard.ids import is_uuid, new_id
from shipyard.models import App, Release
from shipyard.servers import service as servers_service

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
GIT_SCHEMES = ("https", "http", "ssh", "git", "file")
UNKNOWN_DETECTION: dict[str, Any] = {
    "framework": "unknown",
    "package_manager": "unknown",
    "lockfile": None,
    "build_profile": "unknown",
    "dockerfile_present": False,
}


def _check(spec: AppSpec, *, creating: bool) -> list[FieldError]:
    problems: list[FieldError] = []
    if creating and spec.name is None:
        problems.append(FieldError("name", "is required"))
    if spec.name is not None and not NAME_RE.match(spec.name):
        problems.append(
            FieldError(
                "name",
                "use 1-63 lowercase letters, digits and hyphens, starting and ending with a "
                "letter or digit (for example my-app)",
            )
        )
    if spec.port is not None and not 1 <= spec.port <= 65535:
        problems.append(FieldError("runtime.port", "must be between 1 and 65535"))
    if spec.healthcheck_path is not None and not spec.healthcheck_path.startswith("/"):
        problems.append(FieldError("runtime.healthcheck_path", "must start with /"))
    repo = spec.repository
    if repo is not None and repo.clone_url:
        parts = urlsplit(repo.clone_url)
        scp_like = re.match(r"^[\w.-]+@[\w.-]+:", repo.clone_url)
        if not scp_like and (parts.scheme not in GIT_SCHEMES or not (parts.netloc or parts.path)):
            problems.append(
                FieldError(
                    "repository.clone_url",
                    f"must be a git URL ({', '.join(GIT_SCHEMES)} or user@host:path)",
                )
            )
    if repo is not None and not repo.clone_url and not (repo.owner and repo.name):
        problems.append(
            FieldError("repository", "give clone_url, or owner and name of a GitHub repository")
        )
    if spec.image_ref is not None and (not spec.image_ref.strip() or " " in spec.image_ref):
        problems.append(FieldError("image_ref", "must be an image reference such as nginx:1.27"))
    return problems


async def _check_reachable(spec: AppSpec) -> None:
    """Refuse repository URLs that point at link-local or cloud metadata addresses (SSRF)."""
    if spec.repository is not None and spec.repository.clone_url:
        await git.check_url_not_internal(
            spec.repository.clone_url, allow_file=True, field="repository.clone_url"
        )


def _derive_source_type(app: App) -> str | None:
    if app.build_mode == "compose" or app.compose_file:
        return "compose"
    if app.clone_url:
        return "git"
    if app.image_ref:
        return "image"
    return None


def _apply(app: App, spec: AppSpec) -> None:
    given = spec.model_dump(exclude_unset=True)
    if spec.repository is not None:
        repo = spec.repository
        app.repo_provider = repo.provider
        app.repo_owner = repo.owner
        app.repo_name = repo.name
        app.clone_url = repo.clone_url or (
            f"https://github.com/{repo.owner}/{repo.name}.git"
            if repo.provider == "github"
            else None
        )
        app.default_branch = repo.default_branch
    elif "repository" in given:
        app.repo_provider = app.repo_owner = app.repo_name = None
        app.clone_url = app.default_branch = None
    for field in (
        "branch",
        "commit_sha",
        "image_ref",
        "compose_file",
        "port",
        "healthcheck_path",
        "dependency_profile",
    ):
        if field in given:
            setattr(app, field, given[field])
    if spec.build_mode is not None:
        app.build_mode = spec.build_mode
    if spec.name is not None:
        app.name = spec.name
    app.source_type = spec.source_type or _derive_source_type(app)


async def create_app(session: AsyncSession, principal: Principal, spec: AppSpec) -> App:
    """Create an app owned by the caller on the chosen (default: local) server."""
    problems = _check(spec, creating=True)
    if problems:
        raise Invalid("the app is not valid", problems)
    await _check_reachable(spec)
    assert spec.name is not None
    if principal.app_id is not None:
        raise Forbidden("a token bound to one app cannot create apps; use a personal token")
    server_id = spec.server_id or await servers_service.local_server_id(session)
    if await servers_service.get_server(session, server_id) is None:
        raise Invalid("the server does not exist", [FieldError("server_id", "unknown server")])
    if await repository.name_taken(session, spec.name):
        raise Conflict(f"an app named {spec.name} already exists; choose another name")
    now = now_ms()
    app = App(
        id=new_id(),
        name=spec.name,
        owner_id=principal.user_id,
        server_id=server_id,
        build_mode="auto",
        created_at_ms=now,
        updated_at_ms=now,
    )
    _apply(app, spec)
    session.add(app)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create took the name
        raise Conflict(f"an app named {spec.name} already exists; choose another name") from exc
    return app


async def list_apps_json(
    session: AsyncSession, principal: Principal, shape: Callable[[str], ColumnElement[str]]
) -> list[str]:
    """The apps the caller may see, each already serialised by the database with ``shape``."""
    return await repository.list_visible_json(session, principal, shape)


async def get_app(session: AsyncSession, principal: Principal, app_id: str) -> App:
    """The app, if it exists and the caller may see it; otherwise the same 404 either way."""
    app = await repository.get(session, app_id) if is_uuid(app_id) else None
    if app is None or not principal.may_touch_app(app.id, app.owner_id):
        raise NotFound("app not found")
    return app


async def update_app(
    session: AsyncSession, principal: Principal, app_id: str, spec: AppSpec
) -> App:
    app = await get_app(session, principal, app_id)
    problems = _check(spec, creating=False)
    if problems:
        raise Invalid("the app update is not valid", problems)
    await _check_reachable(spec)
    if spec.name is not None and await repository.name_taken(session, spec.name, except_id=app.id):
        raise Conflict(f"an app named {spec.name} already exists; choose another name")
    if (
        spec.server_id is not None
        and await servers_service.get_server(session, spec.server_id) is None
    ):
        raise Invalid("the server does not exist", [FieldError("server_id", "unknown server")])
    renamed = spec.name is not None and spec.name != app.name
    _apply(app, spec)
    if spec.server_id is not None:
        app.server_id = spec.server_id
    app.updated_at_ms = now_ms()
    await session.flush()
    if renamed:  # its generated hostname changes with its name
        await proxy_sync.request_sync(session, app)
    return app


TEARDOWN_JOB = "app_teardown"


async def delete_app(session: AsyncSession, principal: Principal, app_id: str) -> bool:
    """Delete the app with its env vars, domains and releases. Its running instances are stopped,
    its routes removed and its release artifacts and git mirror deleted by a job queued in the
    same transaction; True when there is one."""
    app = await get_app(session, principal, app_id)
    releases = list(
        (await session.execute(select(Release).where(Release.app_id == app.id))).scalars()
    )
    instances = [
        {**inst, "release_id": r.id, "runtime": r.runtime}
        for r in releases
        for inst in (r.instances or [])
    ]
    # Pruned releases' artifacts are gone already.
    artifacts = [
        {"runtime": r.runtime, "ref": r.artifact_ref}
        for r in releases
        if r.artifact_ref and r.status != "pruned"
    ]
    if instances or artifacts:
        await jobs.enqueue(
            session,
            TEARDOWN_JOB,
            {"app": app.name, "app_id": app.id, "instances": instances, "artifacts": artifacts},
        )
    await session.delete(app)
    await session.flush()
    return bool(instances or artifacts)


def effective_config(app: App) -> dict[str, Any]:
    """The import/build configuration a deployment of this app would use.

    ``compose`` is left out rather than null when there is none: the contract types it as
    ``allOf: [ComposeSummary]``, which a null does not satisfy.
    """
    return {
        "app_id": app.id,
        "repository": {
            "provider": app.repo_provider or ("image" if app.image_ref else "none"),
            "owner": app.repo_owner or "",
            "name": app.repo_name or (app.image_ref or ""),
            "clone_url": app.clone_url,
            "default_branch": app.default_branch,
        },
        "source": {"branch": app.branch or app.default_branch, "commit_sha": app.commit_sha},
        "build_mode": app.build_mode,
        "detection": {**UNKNOWN_DETECTION, **(app.detection or {})},
        "dependency_profile": app.dependency_profile or {"postgres": None, "redis": None},
        "manifest": app.manifest,
    }
