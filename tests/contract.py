"""The Rustploy wire contract (shared/seeds/contracts/rustploy-openapi.yaml) as a test oracle."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

CONTRACT_PATH = (
    Path(__file__).resolve().parents[2] / "shared" / "seeds" / "contracts" / "rustploy-openapi.yaml"
)


@cache
def contract() -> dict[str, Any]:
    if not CONTRACT_PATH.exists():
        raise FileNotFoundError(
            f"the Rustploy contract is expected at {CONTRACT_PATH} (shared/ beside the repository)"
        )
    return dict(yaml.safe_load(CONTRACT_PATH.read_text()))


@cache
def operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    out = {}
    for path, item in contract()["paths"].items():
        for method, op in item.items():
            out[op["operationId"]] = (method.upper(), path, op)
    return out


def response_schema(operation_id: str, status: int) -> dict[str, Any] | None:
    _, _, op = operations()[operation_id]
    response = op["responses"].get(str(status))
    assert response is not None, f"the contract has no {status} response for {operation_id}"
    content = response.get("content", {})
    if "application/json" not in content:
        return None
    return dict(content["application/json"]["schema"])


def assert_matches_contract(response: httpx.Response, operation_id: str) -> None:
    """The status is one the contract lists for this operation and the body fits its schema."""
    schema = response_schema(operation_id, response.status_code)
    if schema is None:
        return
    document = {**schema, "components": contract()["components"]}
    jsonschema.validate(response.json(), document, cls=jsonschema.Draft202012Validator)


def assert_error_envelope(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    document = {
        "$ref": "#/components/schemas/ApiErrorResponse",
        "components": contract()["components"],
    }
    jsonschema.validate(body, document, cls=jsonschema.Draft202012Validator)
    assert response.headers.get("x-request-id")
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])
