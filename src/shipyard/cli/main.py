"""``shipyard``: serve, create the first admin, rotate the secret key, print the version."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from shipyard import __version__
from shipyard.config import Settings

app = typer.Typer(help="Shipyard: a self-hosted application platform.", no_args_is_help=True)
admin_app = typer.Typer(help="Manage administrators.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Manage the key that encrypts secrets at rest.", no_args_is_help=True
)
app.add_typer(admin_app, name="admin")
app.add_typer(secrets_app, name="secrets")
console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where Shipyard keeps its database and keys.", envvar="SHIPYARD_DATA_DIR"
    ),
]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def version() -> None:
    """Print Shipyard's version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000).")] = None,
    data_dir: DataDir = None,
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
) -> None:
    """Run the Shipyard server (applies database migrations first)."""
    env = dict(os.environ)
    for name, value in (("HOST", host), ("PORT", port), ("DATA_DIR", data_dir)):
        if value is not None:
            env[f"SHIPYARD_{name}"] = str(value)
    env["SHIPYARD_ACCESS_LOG"] = "1" if access_log else "0"
    # glibc gives each thread that allocates its own malloc arena; the server's few threads (SQLite
    # connections, the docker client) then keep ~2 MB of free memory each. Two arenas are plenty
    # for one event loop; an operator's own setting wins.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    try:  # fail here, with a readable message, on bad SHIPYARD_* values
        _settings(data_dir, host=host, port=port)
    except ValidationError as exc:
        console.print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(2) from None
    # Replace this process with the lean server module (see shipyard/server.py).
    os.execve(sys.executable, [sys.executable, "-m", "shipyard.server"], env)  # noqa: S606


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="SHIPYARD_ADMIN_PASSWORD"
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Create an admin user (works before any user or token exists)."""
    from shipyard.context import AppContext
    from shipyard.errors import ShipyardError
    from shipyard.users.service import create_user

    async def run() -> str:
        ctx = AppContext.from_settings(_settings(data_dir))
        await ctx.start()
        try:
            async with ctx.database.transaction() as session:
                user = await create_user(session, email=email, password=password, role="admin")
                return user.id
        finally:
            await ctx.stop()

    try:
        user_id = asyncio.run(run())
    except ShipyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        for detail in exc.details:
            console.print(f"  {detail.field}: {detail.message}")
        raise typer.Exit(2) from None
    console.print(f"created admin {email} ({user_id})")


@secrets_app.command("rotate-key")
def rotate_key(data_dir: DataDir = None) -> None:
    """Add a new primary key and re-encrypt every stored secret with it (old keys stay to read)."""
    from shipyard.context import AppContext
    from shipyard.env.service import reencrypt_all
    from shipyard.secrets.keyring import Keyring, add_primary_key

    settings = _settings(data_dir)

    async def run() -> int:
        ctx = AppContext.from_settings(settings)
        add_primary_key(settings.resolved_secret_key_file)
        ctx.keyring = Keyring.load_or_create(settings.resolved_secret_key_file)
        await ctx.start()
        try:
            async with ctx.database.transaction() as session:
                return await reencrypt_all(session, ctx.keyring)
        finally:
            await ctx.stop()

    count = asyncio.run(run())
    console.print(
        f"new primary key in {settings.resolved_secret_key_file}; re-encrypted {count} secrets"
    )


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
) -> None:
    """Print the OpenAPI document generated from the code."""
    import yaml

    from shipyard.openapi import openapi_document

    if fmt not in ("yaml", "json"):
        console.print(f"[red]error:[/red] --format must be yaml or json, not {fmt!r}")
        raise typer.Exit(2)
    document = openapi_document()
    text = (
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        if fmt == "yaml"
        else json.dumps(document, indent=2) + "\n"
    )
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)
