"""With SMTP configured, the reset token is mailed to the account (a real SMTP server, aiosmtpd)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from shipyard.app import create_app
from shipyard.auth.service import drain_outbox
from shipyard.config import Settings
from tests.conftest import Api


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content.decode()  # type: ignore[attr-defined]
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, content))  # type: ignore[attr-defined]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def mailed(settings: Settings) -> AsyncIterator[tuple[Api, Inbox]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    configured = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "mail_from": "shipyard@test.local"}
    )
    application = create_app(configured)
    try:
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield Api(client), inbox
    finally:
        controller.stop()


async def test_reset_token_is_mailed_and_works(mailed: tuple[Api, Inbox]) -> None:
    api, inbox = mailed
    await api.user("mailme@example.com")
    r = await api.client.post(
        "/api/v1/auth/password-reset/request", json={"email": "mailme@example.com"}
    )
    assert r.status_code == 202 and r.json()["reset_token"] == ""
    await drain_outbox()
    for _ in range(50):
        if inbox.messages:
            break
        await asyncio.sleep(0.05)
    [(sender, rcpts, content)] = inbox.messages
    assert sender == "shipyard@test.local" and rcpts == ["mailme@example.com"]
    token = content.split("Reset token: ")[1].split()[0]
    confirm = await api.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"reset_token": token, "new_password": "fresh password"},
    )
    assert confirm.status_code == 200
    assert (await api.login("mailme@example.com", "fresh password")).status_code == 200


async def test_nothing_is_mailed_for_an_unknown_account(mailed: tuple[Api, Inbox]) -> None:
    api, inbox = mailed
    await api.root()
    r = await api.client.post(
        "/api/v1/auth/password-reset/request", json={"email": "ghost@example.com"}
    )
    assert r.status_code == 202
    await drain_outbox()
    assert inbox.messages == []
