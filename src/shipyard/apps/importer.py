"""Import an app from a repository: fetch it, read its manifest, detect how it builds, and create
the app with that source, all or nothing."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import repository
from shipyard.apps import service as apps_service
from shipyard.apps.schemas import AppSpec, RepositorySpec
from shipyard.auth.principal import Principal
from shipyard.drivers import git
from shipyard.drivers.build_detection import Detection, detect
from shipyard.drivers.manifest import Manifest, load_manifest
from shipyard.errors import FieldError, Forbidden, Invalid
from shipyard.integrations.names import check_branch
from shipyard.models import App

# An import answers one HTTP request: a repository that takes longer to fetch is refused.
FETCH_TIMEOUT = 120.0
MAX_NAME_SUFFIX = 100
_HEX_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")


@dataclass(frozen=True)
class Imported:
    """The app made, and what its repository said about itself at ``commit_sha``."""

    app: App
    commit_sha: str
    detection: Detection
    manifest: Manifest | None


async def import_app(
    session: AsyncSession, principal: Principal, spec: AppSpec, data_dir: Path
) -> Imported:
    """Fetch the repository at the requested branch or commit, check its manifest, detect its
    build profile and create the app (git source, branch) from it; nothing is created on error."""
    if principal.app_id is not None:
        raise Forbidden("a token bound to one app cannot create apps; use a personal token")
    repo = spec.repository or RepositorySpec()
    url = _clone_url(repo)
    _check_refs(spec, repo)
    await git.check_url_not_internal(url, allow_file=True, field="repository.clone_url")
    scratch = data_dir / "git" / "imports" / uuid.uuid4().hex
    try:
        mirror = await _fetch(url, scratch / "mirror.git")
        head_branch = await git.default_branch(mirror)
        branch = spec.branch or repo.default_branch or head_branch
        commit = await _resolve(mirror, spec, branch)
        tree = await git.checkout(mirror, commit, scratch / "tree")
        manifest = _manifest(tree)
        detection = detect(tree)
        _check_build_mode(spec, detection)
        name = spec.name or await _free_name(session, _name_from(repo, url))
        compose = detection.compose if spec.build_mode == "compose" else None
        compose_file = compose.file if compose else None
        given = spec.model_dump(exclude_unset=True)
        app_spec = AppSpec(
            **{
                **given,
                "name": name,
                "source_type": "compose" if compose_file else "git",
                "repository": repo.model_copy(
                    update={"clone_url": url, "default_branch": repo.default_branch or head_branch}
                ),
                "branch": branch,
                "compose_file": compose_file or given.get("compose_file"),
            }
        )
        app = await apps_service.create_app(session, principal, app_spec)
        app.detection = detection.result()
        app.manifest = manifest.model_dump() if manifest else None
        await session.flush()
        # The first deployment fetches into this cache; it finds the mirror already made.
        cache = data_dir / "git" / "apps" / app.id
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            os.replace(mirror, cache)
        return Imported(app=app, commit_sha=commit, detection=detection, manifest=manifest)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)


def _clone_url(repo: RepositorySpec) -> str:
    if repo.clone_url:
        return repo.clone_url
    if repo.provider == "github" and repo.owner and repo.name:
        return f"https://github.com/{repo.owner}/{repo.name}.git"
    raise Invalid(
        "the repository cannot be fetched",
        [
            FieldError(
                "repository.clone_url",
                "is required unless provider is github with owner and name",
            )
        ],
    )


def _check_refs(spec: AppSpec, repo: RepositorySpec) -> None:
    if spec.branch is not None:
        check_branch(spec.branch, field="source.branch")
    if repo.default_branch is not None:
        check_branch(repo.default_branch, field="repository.default_branch")
    if spec.commit_sha is not None and not _HEX_RE.match(spec.commit_sha):
        raise Invalid(
            "source.commit_sha is not a commit id",
            [FieldError("source.commit_sha", "a commit id is 7 to 64 hexadecimal characters")],
        )


async def _fetch(url: str, dest: Path) -> Path:
    try:
        return await git.mirror(url, dest, command_timeout=FETCH_TIMEOUT)
    except git.InvalidGitInput:
        raise
    except git.GitError as exc:
        raise Invalid(
            f"the repository could not be fetched: {exc.message}",
            [FieldError("repository.clone_url", "could not be fetched; check the URL and access")],
            code="repository_unreachable",
        ) from None


async def _resolve(mirror: Path, spec: AppSpec, branch: str | None) -> str:
    """The commit to inspect: the one asked for, else the branch's head, else HEAD's. The branch
    the app will follow must exist either way."""
    head = "HEAD"
    if branch is not None:
        field = "source.branch" if spec.branch else "repository.default_branch"
        try:
            head = await git.resolve_cached(mirror, f"refs/heads/{branch}")
        except git.RefNotFound:
            message = f"branch {branch!r} does not exist in the repository"
            raise _unknown_ref(field, message) from None
    if spec.commit_sha is not None:
        try:
            return await git.resolve_cached(mirror, spec.commit_sha)
        except git.RefNotFound as exc:
            raise _unknown_ref("source.commit_sha", exc.message) from None
    if head == "HEAD":
        try:
            return await git.resolve_cached(mirror, "HEAD")
        except git.RefNotFound:
            raise _unknown_ref("repository.clone_url", "the repository has no commits") from None
    return head


def _unknown_ref(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [FieldError(field, message)], code="ref_not_found")


def _manifest(tree: Path) -> Manifest | None:
    try:
        return load_manifest(tree)
    except Invalid as exc:
        # The manifest's own field paths (port, healthcheck.path, ...), under its own code.
        raise Invalid(exc.message, exc.details, code="invalid_manifest") from None


def _check_build_mode(spec: AppSpec, detection: Detection) -> None:
    if spec.build_mode == "dockerfile" and not detection.dockerfile_present:
        message = "is dockerfile, but the repository has no Dockerfile at its root"
    elif spec.build_mode == "compose" and detection.compose is None:
        message = "is compose, but the repository has no compose.yaml or docker-compose.yml"
    else:
        return
    raise Invalid(f"build_mode {message}", [FieldError("build_mode", message)])


def _name_from(repo: RepositorySpec, url: str) -> str:
    """An app name from the repository's name, or the last part of its URL."""
    raw = repo.name or unquote(urlsplit(url).path if "://" in url else url.rsplit(":", 1)[-1])
    raw = raw.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:55].strip("-")
    return name or "app"


async def _free_name(session: AsyncSession, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``... when an app already has it."""
    for n in range(1, MAX_NAME_SUFFIX + 1):
        name = base if n == 1 else f"{base}-{n}"
        if not await repository.name_taken(session, name):
            return name
    raise Invalid(
        f"apps named {base} to {base}-{MAX_NAME_SUFFIX} exist already",
        [FieldError("name", "choose a name for the app")],
    )
