"""The server process: ``python -m shipyard.server``, configured from SHIPYARD_* variables.

``shipyard serve`` parses its options and then replaces itself with this module, so the long-lived
process does not carry the command-line toolkit (Typer, Rich) in memory.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn

from shipyard.app import create_app
from shipyard.config import Settings


def main(access_log: bool = False) -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        access_log=access_log,
        loop=settings.event_loop,
        log_level=settings.log_level,
    )
    _Server(config, app.state.ctx.closing).run()


class _Server(uvicorn.Server):
    """Tells the app when shutdown begins: uvicorn waits for open responses to end, and log
    streams would otherwise never end."""

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self.closing = closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.closing.set()
        await super().shutdown(sockets)


if __name__ == "__main__":
    import os

    main(access_log=os.environ.get("SHIPYARD_ACCESS_LOG", "") in ("1", "true", "yes"))
