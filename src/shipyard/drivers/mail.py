"""Outgoing mail: SMTP when configured, otherwise the server log (for local installs)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

log = logging.getLogger("shipyard.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    """Sends through an SMTP server (optionally STARTTLS and login)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    async def send(self, to: str, subject: str, body: str) -> None:
        import aiosmtplib  # only installs that send mail pay for it

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=30,
        )


class LogMailer:
    """No SMTP server configured: the message goes to the server log for the operator."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning("mail to %s (SMTP not configured): %s\n%s", to, subject, body)
