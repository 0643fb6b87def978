"""Recently verified bearer tokens, so a busy client does not cost a query on every request.

An entry lives for ``ttl_seconds`` (SHIPYARD_AUTH_CACHE_SECONDS, 5 by default, 0 turns the cache
off) and is dropped at once when this process changes a token, a user or an app: every such
flush or bulk UPDATE/DELETE bumps a generation counter, and entries from an older generation are
misses. So a token revoked through the API, or belonging to a deleted user or app, is refused
on the very next request. Only a change made by another process (the database edited by hand,
a second server on the same PostgreSQL) can go unseen, for at most ``ttl_seconds``. Expiry is
checked on every request against the cached expiry time, so the cache never extends a token.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from shipyard.models import ApiToken, App, User
from shipyard.tokens.repository import KEEPS_CREDENTIALS, TokenCredential

MAX_ENTRIES = 10_000
_WATCHED = (ApiToken, User, App)
_WATCHED_TABLES = frozenset(model.__tablename__ for model in _WATCHED)


class CredentialCache:
    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl_seconds = ttl_seconds
        self.generation = 0
        self._entries: dict[str, tuple[TokenCredential, float, int]] = {}

    def get(self, secret_hash: str) -> TokenCredential | None:
        entry = self._entries.get(secret_hash)
        if entry is None:
            return None
        credential, stored_at, generation = entry
        if generation != self.generation or time.monotonic() - stored_at > self.ttl_seconds:
            del self._entries[secret_hash]
            return None
        return credential

    def put(self, secret_hash: str, credential: TokenCredential) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude, but bounded; a full cache only costs queries
        self._entries[secret_hash] = (credential, time.monotonic(), self.generation)

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    def record_use(self, token_id: str, at_ms: int) -> None:
        """Keep cached last-use times current, so the "stale" check does not repeat a write."""
        for key, (credential, stored_at, generation) in list(self._entries.items()):
            if credential.id == token_id:
                fresh = credential._replace(last_used_at_ms=at_ms)
                self._entries[key] = (fresh, stored_at, generation)


cache = CredentialCache()


_CHANGED = "shipyard_credentials_changed"


def _changed(session: Session) -> None:
    # Emptied now and again after the commit: a request that read the old row between this
    # flush and the commit could otherwise cache it again.
    session.info[_CHANGED] = True
    cache.invalidate()


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    if any(isinstance(obj, _WATCHED) for obj in (*session.dirty, *session.deleted)):
        _changed(session)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and not state.execution_options.get(KEEPS_CREDENTIALS):
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _WATCHED_TABLES:
            _changed(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
