"""One pure-ASGI middleware for what every request needs: request id, body limit, rate-limit
headers, metrics and the audit row. Pure ASGI (not BaseHTTPMiddleware) keeps the hot path cheap
and leaves streaming responses alone."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.errors import render
from shipyard.audit import service as audit_service
from shipyard.errors import PayloadTooLarge
from shipyard.metrics.prometheus import observe
from shipyard.tokens import service as tokens_service

log = logging.getLogger("shipyard.api")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Request ids need to be unique, not secret: a random UUID-shaped prefix per process and a
# counter. uuid4() reads the OS's random source on every request, ~4% of a small request's CPU.
_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_numbers = itertools.count(1)


def _new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) % 16**12:012x}"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SAFE_REQUEST_ID.match(text) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        request_id = _incoming_request_id(scope) or _new_request_id()
        state["request_id"] = request_id
        status_holder = [500]
        limit = self.max_body_bytes

        too_large = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _too_large(limit)
            return message

        async def send_with_headers(message: Message) -> None:
            if too_large:
                return  # the framework's answer to the aborted read is replaced by our 413
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                verdict = state.get("ratelimit")
                if verdict is not None and not any(
                    h[0].lower() == b"x-ratelimit-limit" for h in headers
                ):
                    headers.extend(
                        (k.lower().encode(), v.encode()) for k, v in verdict.headers().items()
                    )
                message["headers"] = headers
            await send(message)

        length = _content_length(scope)
        try:
            if length is not None and length > limit:
                too_large = True
            else:
                with contextlib.suppress(PayloadTooLarge):
                    await self.app(scope, limited_receive, send_with_headers)
            if too_large:
                too_large = False
                response = render(Request(scope), _too_large(limit))
                await response(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            observe(scope["method"], template, status_holder[0], time.perf_counter() - started)
            principal = state.get("principal")
            if principal is not None and scope["method"] in MUTATING:
                await self._audit(scope, principal, template, status_holder[0], request_id)
            if state.get("touch_token"):
                await self._touch(scope, state["touch_token"])

    async def _touch(self, scope: Scope, token_id: str) -> None:
        """Record a token's last use, after the response and with no other connection held."""
        try:
            async with scope["app"].state.ctx.database.transaction() as session:
                await tokens_service.record_use(session, token_id)
        except Exception:
            log.exception("could not record the last use of token %s", token_id)

    async def _audit(
        self, scope: Scope, principal: Any, route: str, status: int, request_id: str
    ) -> None:
        ctx = scope["app"].state.ctx
        client = scope.get("client")
        try:
            async with ctx.database.transaction() as session:
                await audit_service.record_request(
                    session,
                    principal,
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status_code=status,
                    request_id=request_id,
                    client_ip=client[0] if client else None,
                )
        except Exception:  # the response is already sent; the operator must hear of a lost row
            log.exception("could not record the audit row for request %s", request_id)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes; send less or raise SHIPYARD_MAX_BODY_BYTES"
    )
