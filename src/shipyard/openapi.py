"""The OpenAPI document, generated from the code (committed as openapi.yaml, checked for drift)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from shipyard.config import Settings


def openapi_document() -> dict[str, Any]:
    from shipyard.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp)))
        return app.openapi()
