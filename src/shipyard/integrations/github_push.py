"""Deploy on GitHub pushes: match the repository's connected apps, verify the signature with
each one's secret, ignore repeated deliveries, and queue a deployment of the pushed commit for
every app connected to the pushed branch."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.deployments import service as deployments_service
from shipyard.errors import Invalid, ShipyardError, Unauthorized
from shipyard.integrations import repository
from shipyard.models import GithubIntegration
from shipyard.secrets.keyring import Keyring
from shipyard.webhooks.github import first_delivery, signature_matches

DELIVERY_SOURCE = "rustploy"  # RustCI's webhook records its deliveries apart, as "rustci"
TRIGGER = "github"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
NOT_SET_UP = (
    "no app connected to this repository has a webhook secret; connect one with "
    "POST /api/v1/apps/{app_id}/github and webhook_secret, and give GitHub the same secret"
)


@dataclass(frozen=True)
class WebhookOutcome:
    accepted: bool
    matched: int
    deployments: list[str] = field(default_factory=list)
    reason: str | None = None


def webhook_principal(app_id: str | None = None) -> Principal:
    """Who acts for a verified webhook: may deploy the one app it names, nothing else."""
    return Principal(
        user_id=None, role="root", scopes=frozenset({"deploy"}), via="webhook", app_id=app_id
    )


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise Invalid(
            "the webhook body is not JSON: set the GitHub webhook's content type to "
            "application/json"
        ) from None
    if not isinstance(payload, dict):
        raise Invalid("the webhook body must be a JSON object")
    return payload


def repository_of(payload: dict[str, Any]) -> tuple[str, str]:
    repo_info = payload.get("repository")
    full_name = repo_info.get("full_name") if isinstance(repo_info, dict) else None
    if not isinstance(full_name, str):
        return "", ""
    owner, _, repo = full_name.partition("/")
    return owner, repo


def verified_integrations(
    integrations: list[GithubIntegration], keyring: Keyring, body: bytes, signature: str | None
) -> list[GithubIntegration]:
    with_secret = [i for i in integrations if i.webhook_secret_ciphertext]
    if not with_secret:
        raise Unauthorized(NOT_SET_UP, code="no_webhook_secret")
    if not signature:
        raise Unauthorized(
            "the X-Hub-Signature-256 header is missing; set a secret on the GitHub webhook",
            code="missing_signature",
        )
    verified = [
        i
        for i in with_secret
        if signature_matches(keyring.decrypt(i.webhook_secret_ciphertext or ""), body, signature)
    ]
    if not verified:
        raise Unauthorized(
            "the X-Hub-Signature-256 signature does not match the body; check the webhook secret",
            code="bad_signature",
        )
    return verified


def pushed_branch(event: str | None, payload: dict[str, Any]) -> tuple[str | None, str]:
    """(branch, commit) of a push that can deploy; (None, why not) otherwise."""
    if event == "ping":
        return None, "ping: the webhook is set up; pushes to the connected branch will deploy"
    if event != "push":
        return None, f"event {event or '(none)'!r} does not deploy; only push events do"
    ref = str(payload.get("ref") or "")
    if ref.startswith("refs/tags/"):
        return None, f"tag push ({ref.removeprefix('refs/tags/')}) does not deploy"
    if not ref.startswith("refs/heads/"):
        return None, f"push to {ref or '(no ref)'} is not a branch push"
    branch = ref.removeprefix("refs/heads/")
    if payload.get("deleted"):
        return None, f"branch {branch!r} was deleted; nothing to deploy"
    sha = payload.get("after")
    if not isinstance(sha, str) or not _SHA_RE.match(sha):
        return None, f"push to {branch!r} names no commit (after) to deploy"
    return branch, sha


async def handle_github_webhook(
    session: AsyncSession,
    keyring: Keyring,
    *,
    event: str | None,
    delivery_id: str | None,
    signature: str | None,
    body: bytes,
) -> WebhookOutcome:
    """Verify and de-duplicate a GitHub delivery; on a push to a connected branch queue a
    deployment of the pushed commit for each app connected to it."""
    payload = _payload(body)
    owner, repo = repository_of(payload)
    integrations = await repository.for_repository(session, owner, repo) if owner and repo else []
    verified = verified_integrations(integrations, keyring, body, signature)
    matched = len(verified)
    if not await first_delivery(session, DELIVERY_SOURCE, delivery_id):
        return WebhookOutcome(False, matched, reason=f"delivery {delivery_id} was handled before")
    branch, sha_or_reason = pushed_branch(event, payload)
    if branch is None:
        return WebhookOutcome(True, matched, reason=sha_or_reason)
    targets = [i for i in verified if i.branch == branch]
    if not targets:
        connected = ", ".join(sorted({repr(i.branch) for i in verified}))
        reason = f"push to {branch!r} ignored: the connected branch is {connected}"
        return WebhookOutcome(True, matched, reason=reason)
    queued: list[str] = []
    problems: list[str] = []
    for integration in targets:
        try:
            run, _ = await deployments_service.request_deployment(
                session,
                webhook_principal(integration.app_id),
                integration.app_id,
                source_ref=branch,
                commit_sha=sha_or_reason,
                trigger=TRIGGER,
            )
        except ShipyardError as exc:  # one app that cannot deploy must not stop the others
            problems.append(f"app {integration.app_id}: {exc.message}")
            continue
        queued.append(run.id)
    return WebhookOutcome(True, matched, queued, "; ".join(problems) or None)
