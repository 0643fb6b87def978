"""GitHub: connect an app to a repository and branch, and the webhook that deploys on push."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status

from shipyard.api.deps import Ctx, DbSession, Deployer, client_ip, rate_limit
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.integrations import github_connect, github_push

router = APIRouter(prefix=V1, tags=["github"], responses=ERRORS)


@router.post(
    "/apps/{app_id}/github",
    response_model=w.GithubIntegrationSummary,
    operation_id="connectGithub",
)
async def connect_github(
    app_id: str, body: w.GithubConnectRequest, principal: Deployer, session: DbSession, ctx: Ctx
) -> w.GithubIntegrationSummary:
    """Connect an app to a GitHub repository and branch; pushes to it deploy the app."""
    target = github_connect.GithubTarget(
        owner=body.owner,
        repo=body.repo,
        branch=body.branch,
        installation_id=body.installation_id,
        webhook_secret=body.webhook_secret,
    )
    row = await github_connect.connect(session, principal, ctx.keyring, app_id, target)
    return views.github_integration(row)


@router.post(
    "/integrations/github/webhook",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=w.GithubWebhookAccepted,
    operation_id="githubWebhook",
    responses={401: ERRORS[401]},
    # The body is read raw (the signature covers its exact bytes), so it is described here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def github_webhook(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    x_github_event: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
) -> w.GithubWebhookAccepted:
    """GitHub webhook (signed with the app's secret): a push to a connected branch deploys it."""
    await rate_limit(request, "webhook", client_ip(request))
    outcome = await github_push.handle_github_webhook(
        session,
        ctx.keyring,
        event=x_github_event,
        delivery_id=x_github_delivery,
        signature=x_hub_signature_256,
        body=await request.body(),
    )
    await session.commit()
    if outcome.deployments:
        # The audit trail records who changed something; here, the verified webhook.
        request.state.principal = github_push.webhook_principal()
        ctx.wake_engine()
    return w.GithubWebhookAccepted(
        accepted=outcome.accepted,
        matched_integrations=outcome.matched,
        queued_deployments=len(outcome.deployments),
        reason=outcome.reason,
    )
