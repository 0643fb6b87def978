"""Rules for env vars: key names, sizes, atomic bulk upsert, masking and decryption."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.apps import service as apps_service
from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.env import repository
from shipyard.errors import FieldError, Invalid, NotFound
from shipyard.models import AppEnvVar
from shipyard.secrets.keyring import Keyring

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_KEY_LENGTH = 255
MAX_VALUE_BYTES = 64 * 1024
MAX_VARS_PER_REQUEST = 500
MASK = "********"


@dataclass(frozen=True)
class EnvVarView:
    app_id: str
    key: str
    value: str
    masked: bool
    updated_at_ms: int


def check_key(key: str, field: str) -> FieldError | None:
    if not key:
        return FieldError(field, "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        return FieldError(field, f"must be at most {MAX_KEY_LENGTH} characters")
    if not KEY_RE.match(key):
        return FieldError(
            field,
            "use letters, digits and underscores, not starting with a digit (e.g. DATABASE_URL)",
        )
    return None


def _check_items(items: list[tuple[str, str]], prefix: str) -> list[FieldError]:
    problems: list[FieldError] = []
    if len(items) > MAX_VARS_PER_REQUEST:
        problems.append(
            FieldError(prefix or "items", f"at most {MAX_VARS_PER_REQUEST} per request")
        )
    seen: set[str] = set()
    for i, (key, value) in enumerate(items):
        where = f"{prefix}[{i}]." if prefix else ""
        bad_key = check_key(key, f"{where}key")
        if bad_key:
            problems.append(bad_key)
        elif key in seen:
            problems.append(FieldError(f"{where}key", f"{key} is given twice"))
        seen.add(key)
        if len(value.encode()) > MAX_VALUE_BYTES:
            problems.append(FieldError(f"{where}value", f"must be at most {MAX_VALUE_BYTES} bytes"))
        if "\x00" in value:
            problems.append(FieldError(f"{where}value", "must not contain NUL characters"))
    return problems


def _view(row: AppEnvVar, keyring: Keyring, reveal: bool) -> EnvVarView:
    value = keyring.decrypt(row.value_ciphertext) if reveal else MASK
    return EnvVarView(row.app_id, row.key, value, not reveal, row.updated_at_ms)


async def list_env(
    session: AsyncSession, principal: Principal, app_id: str, keyring: Keyring, *, reveal: bool
) -> list[EnvVarView]:
    app = await apps_service.get_app(session, principal, app_id)
    return [_view(r, keyring, reveal) for r in await repository.list_for_app(session, app.id)]


async def upsert_env(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    items: list[tuple[str, str]],
    keyring: Keyring,
    *,
    field_prefix: str = "items",
) -> list[EnvVarView]:
    """Set several variables at once: all of them or, if any is invalid, none."""
    app = await apps_service.get_app(session, principal, app_id)
    problems = _check_items(items, field_prefix)
    if problems:
        raise Invalid("the environment variables are not valid; nothing was changed", problems)
    now = now_ms()
    rows: list[AppEnvVar] = []
    for key, value in items:
        row = await repository.get(session, app.id, key)
        if row is None:
            row = AppEnvVar(app_id=app.id, key=key, value_ciphertext="", updated_at_ms=now)
            session.add(row)
        row.value_ciphertext = keyring.encrypt(value)
        row.updated_at_ms = now
        rows.append(row)
    await session.flush()
    return [_view(r, keyring, reveal=False) for r in rows]


async def delete_env(session: AsyncSession, principal: Principal, app_id: str, key: str) -> None:
    app = await apps_service.get_app(session, principal, app_id)
    if await repository.delete_one(session, app.id, key) == 0:
        raise NotFound(f"the app has no environment variable {key}")


async def decrypted_env(session: AsyncSession, app_id: str, keyring: Keyring) -> dict[str, str]:
    """Plain values for a deployment; callers must keep them out of logs."""
    return {
        r.key: keyring.decrypt(r.value_ciphertext)
        for r in await repository.list_for_app(session, app_id)
    }


async def reencrypt_all(session: AsyncSession, keyring: Keyring) -> int:
    """Re-encrypt every stored value with the keyring's primary key; returns how many."""
    rows = await repository.list_all(session)
    for row in rows:
        row.value_ciphertext = keyring.rotate(row.value_ciphertext)
    await session.flush()
    return len(rows)
