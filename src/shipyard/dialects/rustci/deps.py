"""RustCI callers: any Shipyard bearer token (JWT, PAT, service token) within its scopes, limited
to 100 requests a minute and 1,000 an hour per user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shipyard.api.deps import DbSession, authenticate, client_ip, rate_limit
from shipyard.auth.principal import Principal, Scope
from shipyard.errors import Forbidden


def rustci_user(scope: Scope):  # type: ignore[no-untyped-def]
    async def dependency(request: Request, session: DbSession) -> Principal:
        principal = await authenticate(request, session)
        await rate_limit(
            request, "rustci", principal.user_id or principal.token_id or client_ip(request)
        )
        if not principal.has_scope(scope):
            raise Forbidden(f"this needs a credential with the '{scope}' scope")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(rustci_user("read"))]
Deployer = Annotated[Principal, Depends(rustci_user("deploy"))]
Admin = Annotated[Principal, Depends(rustci_user("admin"))]
