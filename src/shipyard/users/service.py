"""Rules for users: creation, roles, email normalisation."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.passwords import check_password_policy, hash_password
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound, invalid_field
from shipyard.ids import new_id
from shipyard.models import User
from shipyard.users import repository

ROLES = ("admin", "member")


def normalise_email(email: str, field: str = "email") -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise invalid_field(field, f"is not a valid email address ({exc})") from exc


async def create_user(
    session: AsyncSession, *, email: str, password: str, role: str = "member"
) -> User:
    """Create a user with an argon2id password hash; the email must be new."""
    email = normalise_email(email)
    check_password_policy(password)
    if role not in ROLES:
        raise invalid_field("role", f"must be one of {', '.join(ROLES)}")
    if await repository.get_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists", code="user_exists")
    now = now_ms()
    user = User(
        id=new_id(),
        email=email,
        password_hash=hash_password(password),
        role=role,
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return await repository.list_all(session)


async def update_email(session: AsyncSession, user_id: str, email: str) -> User:
    user = await get_user(session, user_id)
    normalised = normalise_email(email)
    other = await repository.get_by_email(session, normalised)
    if other is not None and other.id != user.id:
        raise Conflict(f"a user with email {normalised} already exists", code="user_exists")
    user.email = normalised
    user.updated_at_ms = now_ms()
    await session.flush()
    return user
