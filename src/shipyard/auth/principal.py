"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "deploy", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "deploy", "admin")
# Scopes nest: a deploy token can read, an admin token can deploy and read.
_RANK = {"read": 0, "deploy": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: str | None
    role: str  # "admin" or "member"; "root" for the bootstrap caller and tokens made by it
    scopes: frozenset[str]
    via: Literal["session", "token", "bootstrap", "webhook"]
    token_id: str | None = None
    session_id: str | None = None
    app_id: str | None = None  # a token bound to one app can touch nothing else
    email: str | None = None

    def has_scope(self, needed: Scope) -> bool:
        return any(_RANK[s] >= _RANK[needed] for s in self.scopes if s in _RANK)

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "root")

    def owns(self, owner_id: str | None) -> bool:
        """Object-level authorization: admins see everything, members their own objects."""
        return self.is_admin or (owner_id is not None and owner_id == self.user_id)

    def may_touch_app(self, app_id: str, owner_id: str | None) -> bool:
        if self.app_id is not None and self.app_id != app_id:
            return False
        return self.owns(owner_id)


def highest_scope(scopes: frozenset[str] | set[str]) -> int:
    return max((_RANK[s] for s in scopes if s in _RANK), default=-1)


def normalise_scopes(scopes: list[str]) -> list[str]:
    """Unique, in canonical order."""
    present = set(scopes)
    return [s for s in SCOPES if s in present]
