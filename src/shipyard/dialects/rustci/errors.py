"""RustCI's error envelope: {"error": {type, message, details, timestamp, correlation_id}}."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import JSONResponse

from shipyard.errors import ShipyardError

# RustCI paths under /v1 (Container Engine owns the rest of /v1).
PREFIXES = (
    "/v1/api/",
    "/v1/health",
    "/v1/auth/github",
    "/v1/auth/token",
    "/v1/webhooks/",
    "/v1/ws/",
)

_TYPES = {
    400: "ValidationError",
    401: "AuthenticationError",
    403: "AuthorizationError",
    404: "NotFoundError",
    405: "MethodNotAllowed",
    409: "ConflictError",
    413: "PayloadTooLarge",
    422: "ValidationError",
    429: "RateLimitError",
    503: "ServiceUnavailable",
}


def status_for(error: ShipyardError) -> int:
    # RustCI answers a well-formed but invalid request with 422; unparseable input stays 400.
    if error.status == 400 and error.code == "validation_error":
        return 422
    return error.status


def render(request: Request, error: ShipyardError) -> JSONResponse:
    status = status_for(error)
    details: dict[str, object] | None = None
    if error.details:
        first = error.details[0]
        details = {
            "field": first.field,
            "reason": first.message,
            "errors": [{"field": d.field, "reason": d.message} for d in error.details],
        }
    body = {
        "error": {
            "type": _TYPES.get(status, "InternalError"),
            "message": error.message,
            "details": details,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "correlation_id": getattr(request.state, "request_id", None),
        }
    }
    return JSONResponse(body, status_code=status, headers=error.headers)
