"""Turn errors into responses. The canonical envelope is {"error": {"code", "message", "details"}}.

Each dialect registers a renderer for its path prefix; the longest matching prefix wins, so one
app-wide handler serves every dialect in its own shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import FieldError, Invalid, ShipyardError

log = logging.getLogger("shipyard.api")

Renderer = Callable[[Request, ShipyardError], JSONResponse]


def canonical_body(error: ShipyardError) -> dict[str, Any]:
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": [{"field": d.field, "message": d.message} for d in error.details],
        }
    }


def render_canonical(request: Request, error: ShipyardError) -> JSONResponse:
    return JSONResponse(canonical_body(error), status_code=error.status, headers=error.headers)


_renderers: list[tuple[str, Renderer]] = []


def register_renderer(prefix: str, renderer: Renderer) -> None:
    _renderers.append((prefix, renderer))
    _renderers.sort(key=lambda pr: len(pr[0]), reverse=True)


def render(request: Request, error: ShipyardError) -> JSONResponse:
    path = request.url.path
    for prefix, renderer in _renderers:
        if path.startswith(prefix):
            return renderer(request, error)
    return render_canonical(request, error)


def field_path(loc: Sequence[str | int]) -> str:
    """('body', 'items', 0, 'key') -> 'items[0].key'; ('query', 'reveal') -> 'reveal'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


_FRIENDLY = {
    "extra_forbidden": "is not a known field; remove it",
    "missing": "is required",
}


def validation_error(exc: RequestValidationError) -> Invalid:
    details: list[FieldError] = []
    for err in exc.errors():
        kind = err.get("type", "")
        if kind == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            return Invalid(
                f"the request body is not valid JSON ({ctx}); send a JSON object",
                [FieldError("body", f"not valid JSON: {ctx}")],
                code="invalid_json",
            )
        message = _FRIENDLY.get(kind) or str(err.get("msg", "is not valid"))
        if tuple(err.get("loc", ())) == ("body",) and kind in (
            "dict_type",
            "model_attributes_type",
        ):
            message = "send a JSON object with the header Content-Type: application/json"
        details.append(FieldError(field_path(err.get("loc", ())), message))
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:5])
    return Invalid(f"the request is not valid: {summary}", details)


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    async def on_shipyard_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ShipyardError)
        return render(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return render(request, validation_error(exc))

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            error = ShipyardError("no such endpoint; see /docs", code="not_found", status=404)
        elif exc.status_code == 405:
            error = ShipyardError(
                f"method {request.method} is not allowed here",
                code="method_not_allowed",
                status=405,
                headers=dict(exc.headers or {}),
            )
        else:
            error = ShipyardError(str(exc.detail), code="http_error", status=exc.status_code)
        return render(request, error)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.url.path, request_id
        )
        return render(
            request,
            ShipyardError(
                f"internal error; quote request id {request_id} when reporting it",
                code="internal_error",
                status=500,
            ),
        )

    app.add_exception_handler(ShipyardError, on_shipyard_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
