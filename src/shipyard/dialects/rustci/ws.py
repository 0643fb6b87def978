"""wss /v1/ws/executions/{id}?token=: every stage and step transition of an execution, in order.

Stored updates are replayed first (subscribing before reading, and skipping what was already
sent by its sequence number), so a client that connects late still sees every transition."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from shipyard.auth import service as auth_service
from shipyard.errors import NotFound, Unauthorized
from shipyard.events.bus import run_topic
from shipyard.runs import events as run_events
from shipyard.runs import service as runs_service

router = APIRouter(prefix="/v1")
POLICY_VIOLATION = 1008
FINAL = frozenset({"completed", "failed", "cancelled"})


@router.websocket("/ws/executions/{execution_id}")
async def execution_updates(websocket: WebSocket, execution_id: str, token: str = "") -> None:
    """Stream execution_update messages until the execution ends."""
    ctx = websocket.app.state.ctx
    await websocket.accept()
    try:
        async with ctx.database.reading() as session:
            principal, _ = await auth_service.authenticate_bearer(session, token, ctx.signing_key)
            await runs_service.get_execution(session, principal, execution_id)
    except (Unauthorized, NotFound) as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=exc.message[:120])
        return
    sent = 0
    with contextlib.suppress(WebSocketDisconnect):
        async with ctx.bus.subscribe(run_topic(execution_id)) as queue:
            async with ctx.database.reading() as session:
                backlog = await run_events.replay(session, execution_id)
            for event in backlog:
                sent = event["seq"]
                await websocket.send_json(_wire(event))
                if _is_final(event):
                    await websocket.close()
                    return
            while True:
                event = await queue.get()
                if event.get("type") == "overflow":
                    async with ctx.database.reading() as session:
                        missed = await run_events.replay(session, execution_id, sent)
                elif event.get("type") == "execution_update" and event["seq"] > sent:
                    missed = [event]
                else:
                    continue
                for update in missed:
                    sent = update["seq"]
                    await websocket.send_json(_wire(update))
                    if _is_final(update):
                        await websocket.close()
                        return


def _wire(event: dict[str, object]) -> dict[str, object]:
    return {"type": event["type"], "data": event["data"]}


def _is_final(event: dict[str, object]) -> bool:
    data = event["data"]
    assert isinstance(data, dict)
    return data["stage"] is None and data["status"] in FINAL
