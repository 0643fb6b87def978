"""Users (admins only): invite members and other admins."""

from __future__ import annotations

from fastapi import APIRouter, status

from shipyard.api.deps import DbSession, UnboundAdmin
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.auth.principal import Principal
from shipyard.errors import Forbidden
from shipyard.users import service as users_service

router = APIRouter(prefix=f"{V1}/users", tags=["users"], responses=ERRORS)


def _require_admin_role(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("only admins manage users")


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=w.UserSummary, operation_id="createUser"
)
async def create_user(
    body: w.CreateUserRequest, principal: UnboundAdmin, session: DbSession
) -> w.UserSummary:
    """Create a user with a password (admins only)."""
    _require_admin_role(principal)
    user = await users_service.create_user(
        session, email=body.email, password=body.password, role=body.role
    )
    return views.user(user)


@router.get("", response_model=w.UserListResponse, operation_id="listUsers")
async def list_users(principal: UnboundAdmin, session: DbSession) -> w.UserListResponse:
    """List users (admins only)."""
    _require_admin_role(principal)
    return w.UserListResponse(
        items=[views.user(u) for u in await users_service.list_users(session)]
    )
