"""Upgrading a database that has data keeps every row (SQLite rebuilds tables in batch mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.db.engine import Database
from shipyard.db.run_migrations import upgrade
from tests.conftest import PG_URL

ROWS = [
    "INSERT INTO users (id,email,role,created_at_ms,updated_at_ms)"
    " VALUES ('u','a@b.c','member',0,0)",
    "INSERT INTO servers (id,name,kind,runtime,created_at_ms,updated_at_ms)"
    " VALUES ('s','local','local','auto',0,0)",
    "INSERT INTO apps (id,name,owner_id,server_id,build_mode,created_at_ms,updated_at_ms)"
    " VALUES ('a','web','u','s','auto',0,0)",
    "INSERT INTO api_tokens (id,user_id,kind,name,prefix,secret_hash,scopes,created_at_ms)"
    " VALUES ('t','u','personal','n','p','h','read',0)",
    "INSERT INTO login_sessions (id,user_id,secret_hash,created_at_ms,expires_at_ms)"
    " VALUES ('l','u','h2',0,1)",
]


@pytest.mark.skipif(PG_URL is not None, reason="PostgreSQL alters tables in place")
async def test_upgrade_from_0001_keeps_tokens_sessions_and_owners(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0001_foundation")
    db = Database(url)
    async with db.transaction() as s:
        for row in ROWS:
            await s.execute(text(row))
    await db.dispose()
    await upgrade(url)
    db = Database(url)
    async with db.reading() as s:
        assert (await s.execute(text("SELECT count(*) FROM api_tokens"))).scalar() == 1
        assert (await s.execute(text("SELECT count(*) FROM login_sessions"))).scalar() == 1
        assert (await s.execute(text("SELECT owner_id FROM apps"))).scalar() == "u"
    await db.dispose()
