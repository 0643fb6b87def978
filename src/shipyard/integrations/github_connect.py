"""Connect an app to a GitHub repository and branch: pushes to it deploy the app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import service as apps_service
from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.integrations.names import check_branch, check_owner, check_repo
from shipyard.models import GithubIntegration
from shipyard.secrets.keyring import Keyring


@dataclass(frozen=True)
class GithubTarget:
    owner: str
    repo: str
    branch: str
    installation_id: int | None = None
    webhook_secret: str | None = None  # None keeps the stored secret


async def connect(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    app_id: str,
    target: GithubTarget,
) -> GithubIntegration:
    """Store (or replace) the app's GitHub mapping; the webhook secret is kept encrypted."""
    app = await apps_service.get_app(session, principal, app_id)
    check_owner(target.owner)
    check_repo(target.repo)
    check_branch(target.branch)
    row = await session.get(GithubIntegration, app.id)
    if row is None:
        row = GithubIntegration(app_id=app.id, created_at_ms=now_ms())
        session.add(row)
    row.owner, row.repo, row.branch = target.owner, target.repo, target.branch
    row.installation_id = target.installation_id
    if target.webhook_secret is not None:
        row.webhook_secret_ciphertext = keyring.encrypt(target.webhook_secret)
    await session.flush()
    return row
