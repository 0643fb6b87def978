"""The server process: ``python -m shipyard.server``, configured from SHIPYARD_* variables.

``shipyard serve`` parses its options and then replaces itself with this module, so the long-lived
process does not carry the command-line toolkit (Typer, Rich) in memory.
"""

from __future__ import annotations

import logging

import uvicorn

from shipyard.app import create_app
from shipyard.config import Settings


def main(access_log: bool = False) -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        access_log=access_log,
        loop=settings.event_loop,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    import os

    main(access_log=os.environ.get("SHIPYARD_ACCESS_LOG", "") in ("1", "true", "yes"))
