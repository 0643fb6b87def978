"""The App wire shape built by the database: one JSON text per app, for the app list.

Listing 100 apps spent ~70% of the request in Python turning rows into dicts and JSON (bench/
RESULTS.md). SQLite (`json_object`) and PostgreSQL (`json_build_object`) build the same objects
in C, so the list endpoint only joins the texts. This mirrors ``views.app_json`` key for key; a
test checks that every app in the list equals the app as ``GET /apps/{id}`` answers it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Text, and_, case, cast, func, literal_column, null, or_
from sqlalchemy.sql.elements import ColumnElement

from shipyard.models import App


def _object(dialect: str, fields: list[tuple[str, Any]]) -> ColumnElement[Any]:
    # Keys are this module's own constants, inlined so PostgreSQL need not guess a bind's type.
    args: list[Any] = []
    for key, value in fields:
        args += [literal_column(f"'{key}'"), value]
    if dialect == "postgresql":
        return func.json_build_object(*args)
    return func.json_object(*args)


def _present(column: Any) -> ColumnElement[bool]:
    return and_(column.is_not(None), column != "")


@functools.cache  # built once per dialect: building it is most of the cost of using it
def app_json_sql(dialect: str) -> ColumnElement[str]:
    """A text column holding each app's wire JSON (``views.app_json``) for ``dialect``."""
    repository = _object(
        dialect,
        [
            ("provider", App.repo_provider),
            ("owner", App.repo_owner),
            ("name", App.repo_name),
            ("clone_url", App.clone_url),
            ("default_branch", App.default_branch),
        ],
    )
    shape = _object(
        dialect,
        [
            ("id", App.id),
            ("name", App.name),
            ("created_at_unix_ms", App.created_at_ms),
            ("updated_at_unix_ms", App.updated_at_ms),
            ("owner_id", App.owner_id),
            ("server_id", App.server_id),
            ("source_type", App.source_type),
            (
                "repository",
                case(
                    (or_(_present(App.clone_url), _present(App.repo_name)), repository),
                    else_=null(),
                ),
            ),
            ("source", _object(dialect, [("branch", App.branch), ("commit_sha", App.commit_sha)])),
            ("image_ref", App.image_ref),
            ("compose_file", App.compose_file),
            ("build_mode", App.build_mode),
            (
                "runtime",
                _object(dialect, [("port", App.port), ("healthcheck_path", App.healthcheck_path)]),
            ),
            ("state", case((App.live_release_id.is_not(None), App.state), else_=null())),
        ],
    )
    return cast(shape, Text) if dialect == "postgresql" else shape
