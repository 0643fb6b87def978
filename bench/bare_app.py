"""The baseline for bench/api_list_apps.py: a bare Starlette app returning JSONResponses.

Served by uvicorn exactly as Shipyard is (one worker, uvicorn's default loop and HTTP
implementation, no access log), so the difference in throughput is what Shipyard adds on top:
middleware, authentication, rate limiting, the database query and serialising 100 apps.

``/json`` is the baseline the targets are measured against: a small constant object.
``/apps`` (for information) answers a constant body shaped and sized like Shipyard's list of 100
apps (about 38 KB), serialised by JSONResponse on every request, to show how much of the gap is
just the size of the answer.

Run it on its own with ``.venv/bin/python bench/bare_app.py --port 8001``.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PAYLOAD = {"status": "ok", "items": []}
SERVER_ID = "01a208cb-2c33-7cd1-b204-947da14a5dcd"
APPS = {
    "items": [
        {
            "id": f"01a208cb-2cf9-7144-8319-e4f9020b{i:04x}",
            "name": f"app-{i:03d}",
            "created_at_unix_ms": 1_795_443_862_777 + i,
            "updated_at_unix_ms": 1_795_443_862_777 + i,
            "owner_id": None,
            "server_id": SERVER_ID,
            "source_type": None,
            "repository": None,
            "source": {"branch": None, "commit_sha": None},
            "image_ref": None,
            "compose_file": None,
            "build_mode": "auto",
            "runtime": {"port": None, "healthcheck_path": None},
        }
        for i in range(100)
    ]
}


async def hello(request: Request) -> JSONResponse:
    return JSONResponse(PAYLOAD)


async def apps(request: Request) -> JSONResponse:
    return JSONResponse(APPS)


app = Starlette(routes=[Route("/json", hello), Route("/apps", apps)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # loop="auto" and http="auto" are uvicorn's defaults (uvloop and httptools when installed),
    # the same choice shipyard.server gets.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
