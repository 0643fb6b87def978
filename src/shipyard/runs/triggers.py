"""Start executions from GitHub webhooks: match the repository's workspaces, check each one's
secret, de-duplicate the delivery, and queue pipelines whose trigger and branch match."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.errors import Invalid, ShipyardError, Unauthorized
from shipyard.models import Pipeline, Workspace
from shipyard.runs.service import queue_execution
from shipyard.secrets.keyring import Keyring
from shipyard.webhooks.github import first_delivery, normalise_repo_url, signature_matches


@dataclass(frozen=True)
class WebhookOutcome:
    message: str
    executions: list[str]
    workspaces: list[Workspace]
    commit_sha: str | None = None


def _repo_urls(payload: dict[str, Any]) -> set[str]:
    repo = payload.get("repository") or {}
    urls = {repo.get(k) for k in ("clone_url", "html_url", "ssh_url", "git_url", "url")}
    if repo.get("full_name"):
        urls.add(f"https://github.com/{repo['full_name']}")
    return {normalise_repo_url(u) for u in urls if isinstance(u, str) and u}


def _match(event: str, payload: dict[str, Any]) -> tuple[str, str | None, str | None] | None:
    """(trigger, branch the workspace must have, commit to run) or None when not a build event."""
    if event == "push":
        ref = str(payload.get("ref", ""))
        if not ref.startswith("refs/heads/") or payload.get("deleted"):
            return None
        return "push", ref.removeprefix("refs/heads/"), payload.get("after")
    if event == "pull_request" and payload.get("action") in ("opened", "synchronize", "reopened"):
        pr = payload.get("pull_request") or {}
        return "pull_request", (pr.get("base") or {}).get("ref"), (pr.get("head") or {}).get("sha")
    return None


async def handle_github_webhook(
    session: AsyncSession,
    keyring: Keyring,
    *,
    event: str | None,
    delivery_id: str | None,
    signature: str | None,
    body: bytes,
    refresh: Callable[[Workspace, str | None], Awaitable[object]] | None = None,
) -> WebhookOutcome:
    """``refresh`` re-reads a workspace's repository pipelines at the pushed commit first."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Invalid("the webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise Invalid("the webhook body must be a JSON object")
    urls = _repo_urls(payload)
    candidates = [
        w
        for w in (await session.execute(select(Workspace))).scalars()
        if normalise_repo_url(w.repository_url) in urls and w.status == "active"
    ]
    if not candidates:
        return WebhookOutcome("no workspace uses this repository", [], [])
    with_secret = [w for w in candidates if w.webhook_secret_ciphertext]
    if not with_secret:
        raise Unauthorized(
            "no webhook secret is set for this repository's workspaces; set webhook_secret on the "
            "workspace and the same secret on the GitHub webhook"
        )
    verified = [
        w
        for w in with_secret
        if signature_matches(keyring.decrypt(w.webhook_secret_ciphertext or ""), body, signature)
    ]
    if not verified:
        raise Unauthorized("the X-Hub-Signature-256 signature does not match", code="bad_signature")
    if not await first_delivery(session, "rustci", delivery_id):
        return WebhookOutcome("duplicate delivery ignored", [], [])
    if event == "ping":
        return WebhookOutcome("pong", [], [])
    matched = _match(event or "", payload)
    if matched is None:
        return WebhookOutcome(f"event {event!r} does not start executions", [], [])
    trigger, branch, sha = matched
    started: list[str] = []
    problems: list[str] = []
    targets = [w for w in verified if w.branch == branch]
    for workspace in targets:
        if refresh is not None and trigger == "push":
            try:
                await refresh(workspace, sha)
            except ShipyardError as exc:  # run what is known; tell the sender what is wrong
                problems.append(
                    f"{workspace.name}: repository pipelines not updated: {exc.message}"
                )
        pipelines = await session.execute(
            select(Pipeline).where(Pipeline.workspace_id == workspace.id)
        )
        for pipeline in pipelines.scalars():
            if trigger in pipeline.triggers:
                run = await queue_execution(
                    session,
                    pipeline,
                    owner_id=workspace.owner_id,
                    trigger=trigger,
                    branch=branch or workspace.branch,
                    commit_sha=sha,
                    variables={},
                )
                started.append(run.id)
    message = "Webhook processed successfully" + "".join(f"; {p}" for p in problems)
    return WebhookOutcome(message, started, targets, sha)
