"""The `shipyard` command: version, admin create, secrets rotate-key, openapi."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard import __version__
from shipyard.cli.main import app
from shipyard.config import Settings
from shipyard.context import AppContext
from shipyard.env import repository as env_repository
from shipyard.models import AppEnvVar
from shipyard.secrets.keyring import Keyring
from shipyard.users import repository as users_repository

runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SHIPYARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHIPYARD_PASSWORD_HASH_MEMORY_KIB", "1024")
    if settings.database_url:
        monkeypatch.setenv("SHIPYARD_DATABASE_URL", settings.database_url)
    return settings


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_admin_create_makes_an_admin(cli_env: Settings) -> None:
    result = runner.invoke(
        app, ["admin", "create", "--email", "Ops@Example.com", "--password", "long password"]
    )
    assert result.exit_code == 0, result.output

    async def fetch() -> str | None:
        ctx = AppContext.from_settings(Settings())
        async with ctx.database.reading() as session:
            user = await users_repository.get_by_email(session, "ops@example.com")
        await ctx.stop()
        return user.role if user else None

    assert asyncio.run(fetch()) == "admin"


def test_admin_create_explains_a_weak_password(cli_env: Settings) -> None:
    result = runner.invoke(
        app, ["admin", "create", "--email", "a@example.com", "--password", "short"]
    )
    assert result.exit_code == 2
    assert "password" in result.output and "8 characters" in result.output


def test_admin_create_prompts_for_the_password(cli_env: Settings) -> None:
    result = runner.invoke(
        app, ["admin", "create", "--email", "p@example.com"], input="long password\nlong password\n"
    )
    assert result.exit_code == 0, result.output


def test_rotate_key_reencrypts_env_values(cli_env: Settings) -> None:
    async def seed() -> None:
        ctx = AppContext.from_settings(Settings())
        await ctx.start()
        async with ctx.database.transaction() as session:
            from shipyard.apps.schemas import AppSpec
            from shipyard.apps.service import create_app
            from shipyard.auth.service import bootstrap_principal

            created = await create_app(session, bootstrap_principal(), AppSpec(name="web"))
            session.add(
                AppEnvVar(
                    app_id=created.id,
                    key="K",
                    value_ciphertext=ctx.keyring.encrypt("v"),
                    updated_at_ms=0,
                )
            )
        await ctx.stop()

    asyncio.run(seed())
    key_file = Path(cli_env.data_dir) / "secret.key"
    old_key = key_file.read_bytes().split()[0]
    result = runner.invoke(app, ["secrets", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1" in result.output

    async def read_back() -> str:
        ctx = AppContext.from_settings(Settings())
        async with ctx.database.reading() as session:
            [row] = await env_repository.list_all(session)
        await ctx.stop()
        new_primary_only = Keyring([Keyring.load_or_create(key_file).keys[0]])
        assert Keyring.load_or_create(key_file).keys[1] == old_key
        return new_primary_only.decrypt(row.value_ciphertext)

    assert asyncio.run(read_back()) == "v"


def test_openapi_prints_the_spec() -> None:
    result = runner.invoke(app, ["openapi", "--format", "json"])
    assert result.exit_code == 0 and '"/api/v1/apps"' in result.output
