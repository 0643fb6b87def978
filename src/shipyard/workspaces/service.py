"""Rules for workspaces: ownership, repository URL, branch, status, webhook secret, CI secrets."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.drivers import git
from shipyard.env.service import check_key
from shipyard.errors import FieldError, Forbidden, Invalid, NotFound
from shipyard.ids import is_uuid, new_id
from shipyard.models import Pipeline, Run, Workspace, WorkspaceSecret
from shipyard.pagination import Page, PageRequest, paginate
from shipyard.secrets.keyring import Keyring

STATUSES = ("active", "inactive")
BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$")
GIT_URL_RE = re.compile(r"^((https?|ssh|git|file)://\S+|[\w.-]+@[\w.-]+:\S+)$")


def _check(name: str | None, url: str | None, branch: str | None, status: str | None) -> None:
    problems = []
    if name is not None and not 1 <= len(name.strip()) <= 128:
        problems.append(FieldError("name", "must be 1-128 characters"))
    if url is not None and not GIT_URL_RE.match(url):
        problems.append(
            FieldError(
                "repository_url",
                "must be a git URL (https://, ssh://, git://, file:// or user@host:path)",
            )
        )
    if branch is not None and not BRANCH_RE.match(branch):
        problems.append(FieldError("branch", "is not a valid branch name"))
    if status is not None and status not in STATUSES:
        problems.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    if problems:
        raise Invalid("Invalid workspace", problems)


def _visible(principal: Principal):  # type: ignore[no-untyped-def]
    query = select(Workspace)
    if not principal.is_admin:
        query = query.where(Workspace.owner_id == principal.user_id)
    return query


async def create_workspace(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    *,
    name: str,
    repository_url: str,
    branch: str | None,
    webhook_secret: str | None = None,
) -> Workspace:
    if principal.app_id is not None:
        raise Forbidden("a token bound to one app cannot create workspaces")
    _check(name, repository_url, branch or "main", None)
    await git.check_url_not_internal(repository_url, allow_file=True, field="repository_url")
    now = now_ms()
    workspace = Workspace(
        id=new_id(),
        owner_id=principal.user_id,
        name=name.strip(),
        repository_url=repository_url,
        branch=branch or "main",
        status="active",
        webhook_secret_ciphertext=keyring.encrypt(webhook_secret) if webhook_secret else None,
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(workspace)
    await session.flush()
    return workspace


async def list_workspaces(
    session: AsyncSession, principal: Principal, request: PageRequest, status: str | None
) -> Page[Workspace]:
    if status is not None:
        _check(None, None, None, status)
    query = _visible(principal)
    if status is not None:
        query = query.where(Workspace.status == status)
    return await paginate(session, query.order_by(Workspace.id), request)


async def get_workspace(
    session: AsyncSession, principal: Principal, workspace_id: str
) -> Workspace:
    workspace = await session.get(Workspace, workspace_id) if is_uuid(workspace_id) else None
    if workspace is None or not principal.owns(workspace.owner_id) or principal.app_id is not None:
        raise NotFound("workspace not found")
    return workspace


async def update_workspace(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    workspace_id: str,
    changes: dict[str, str | None],
) -> Workspace:
    workspace = await get_workspace(session, principal, workspace_id)
    _check(
        changes.get("name"),
        changes.get("repository_url"),
        changes.get("branch"),
        changes.get("status"),
    )
    if changes.get("repository_url"):
        await git.check_url_not_internal(
            str(changes["repository_url"]), allow_file=True, field="repository_url"
        )
    for field in ("name", "repository_url", "branch", "status"):
        if changes.get(field) is not None:
            setattr(workspace, field, changes[field])
    if "webhook_secret" in changes:
        secret = changes["webhook_secret"]
        workspace.webhook_secret_ciphertext = keyring.encrypt(secret) if secret else None
    workspace.updated_at_ms = now_ms()
    await session.flush()
    return workspace


async def delete_workspace(session: AsyncSession, principal: Principal, workspace_id: str) -> None:
    workspace = await get_workspace(session, principal, workspace_id)
    await session.delete(workspace)
    await session.flush()


async def summary(session: AsyncSession, workspace_id: str) -> tuple[int, int | None]:
    """How many pipelines, and when the last execution was created."""
    count = await session.scalar(
        select(func.count()).select_from(Pipeline).where(Pipeline.workspace_id == workspace_id)
    )
    last = await session.scalar(
        select(func.max(Run.created_at_ms))
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .where(Pipeline.workspace_id == workspace_id)
    )
    return int(count or 0), (int(last) if last is not None else None)


async def set_secrets(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    workspace_id: str,
    values: dict[str, str],
) -> list[str]:
    """Upsert CI secrets (encrypted); returns the names now set."""
    workspace = await get_workspace(session, principal, workspace_id)
    problems = [p for k in values if (p := check_key(k, f"secrets.{k}"))]
    if problems:
        raise Invalid("Invalid secret names", problems)
    now = now_ms()
    for key, value in values.items():
        row = await session.get(WorkspaceSecret, (workspace.id, key))
        if row is None:
            row = WorkspaceSecret(
                workspace_id=workspace.id, key=key, value_ciphertext="", updated_at_ms=now
            )
            session.add(row)
        row.value_ciphertext = keyring.encrypt(value)
        row.updated_at_ms = now
    await session.flush()
    rows = await session.execute(
        select(WorkspaceSecret.key)
        .where(WorkspaceSecret.workspace_id == workspace.id)
        .order_by(WorkspaceSecret.key)
    )
    return [r[0] for r in rows]


async def decrypted_secrets(
    session: AsyncSession, keyring: Keyring, workspace_id: str
) -> dict[str, str]:
    rows = await session.execute(
        select(WorkspaceSecret).where(WorkspaceSecret.workspace_id == workspace_id)
    )
    return {r.key: keyring.decrypt(r.value_ciphertext) for r in rows.scalars()}
