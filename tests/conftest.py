"""Fixtures: a migrated database per test (SQLite by default, PostgreSQL with
SHIPYARD_TEST_DATABASE_URL), the ASGI app with its lifespan, and API helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from shipyard.app import create_app
from shipyard.config import Settings
from shipyard.db.base import Base
from shipyard.db.engine import Database
from shipyard.db.migrate import upgrade_to_head

PG_URL = os.environ.get("SHIPYARD_TEST_DATABASE_URL")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"


def pytest_report_header() -> str:
    return f"shipyard database: {'postgresql' if PG_URL else 'sqlite'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """One migrated SQLite file; each test gets a copy (migrating per test would be slow)."""
    if PG_URL:
        return None
    path = tmp_path_factory.mktemp("template") / "shipyard.db"
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        await upgrade_to_head(database)
        await database.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> bool:
    if not PG_URL:
        return False
    database = Database(Settings(database_url=PG_URL).resolved_database_url)

    async def migrate() -> None:
        await upgrade_to_head(database)
        await database.dispose()

    asyncio.run(migrate())
    return True


async def _truncate_pg(url: str) -> None:
    database = Database(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await database.dispose()


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path | None, pg_migrated: bool) -> Iterator[Settings]:
    """Settings for one test: its own data dir and an empty, migrated database."""
    # Cheap argon2id parameters: the tests create many users; production keeps the defaults.
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
        "password_hash_parallelism": 1,
        # Tests poll executions fast; the documented 100/minute is checked in its own test.
        "rate_limit_rustci": "100000/minute;1000000/hour",
    }
    (tmp_path / "data").mkdir()
    if PG_URL:
        values["database_url"] = PG_URL
        asyncio.run(_truncate_pg(Settings(database_url=PG_URL).resolved_database_url))
    else:
        assert sqlite_template is not None
        shutil.copy(sqlite_template, tmp_path / "data" / "shipyard.db")
    yield Settings(**values)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    # Shutdown stops the engine, which may be cancelling a checkout or a step: on a busy
    # machine that takes longer than the library's 5 s default.
    async with LifespanManager(application, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    # No cookie jar: a test sends the session cookie itself, so no request is logged in by accident.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=jar
    ) as c:
        yield c


def session_cookie(login: httpx.Response) -> dict[str, str]:
    """The Cookie header a browser would send after this login response."""
    value = login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    return {"Cookie": f"rustploy_session={value}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Actor:
    """A user (or the bootstrap root) and a token of theirs."""

    token: str
    token_id: str
    user_id: str | None
    email: str | None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


class Api:
    """Helpers that drive Shipyard through its HTTP API, as a user would."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._root: Actor | None = None
        self._logins: dict[str, httpx.Response] = {}

    async def root(self) -> Actor:
        """The bootstrap token: made over loopback before any user exists."""
        if self._root is None:
            r = await self.client.post("/api/v1/tokens", json={"name": "root", "scopes": ["admin"]})
            assert r.status_code == 201, r.text
            body = r.json()
            self._root = Actor(body["token"], body["summary"]["id"], None, None)
        return self._root

    async def user(
        self, email: str, role: str = "member", scopes: list[str] | None = None
    ) -> Actor:
        """A user with a password and a token with the given scopes (default admin)."""
        root = await self.root()
        r = await self.client.post(
            "/api/v1/users",
            json={"email": email, "password": ADMIN_PASSWORD, "role": role},
            headers=root.headers,
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        token, token_id = await self.token_for(email, scopes or ["admin"])
        return Actor(token, token_id, user_id, email)

    async def login(self, email: str, password: str = ADMIN_PASSWORD) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )

    async def token_for(self, email: str, scopes: list[str], **extra: Any) -> tuple[str, str]:
        login = self._logins.get(email) or await self.login(email)
        assert login.status_code == 200, login.text
        self._logins[email] = login
        r = await self.client.post(
            "/api/v1/tokens",
            json={"name": f"{email} {'+'.join(scopes)}", "scopes": scopes, **extra},
            headers=session_cookie(login),
        )
        assert r.status_code == 201, r.text
        return r.json()["token"], r.json()["summary"]["id"]

    async def create_app(self, actor: Actor, name: str, **fields: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/apps", json={"name": name, **fields}, headers=actor.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
async def admin(api: Api) -> Actor:
    return await api.user(ADMIN_EMAIL, role="admin")


@pytest.fixture
async def member(api: Api) -> Actor:
    return await api.user("member@example.com")


@pytest.fixture
async def other(api: Api) -> Actor:
    return await api.user("other@example.com")


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The local base image (local/python:3.11), with the engine started and the image made."""
    subprocess.run([SCRIPTS / "ensure-docker"], check=True)
    result = subprocess.run(
        [SCRIPTS / "ensure-base-images"], check=True, stdout=subprocess.PIPE, text=True
    )
    return result.stdout.strip().splitlines()[-1]
