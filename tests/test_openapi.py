"""The committed openapi.yaml is what the code generates, and it serves the Rustploy contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shipyard.openapi import openapi_document
from tests.contract import operations

REPO = Path(__file__).resolve().parents[1]
# Contract operations that later issues implement; implementing one means removing it here.
NOT_YET_SERVED = {
    "listAgents",
    "registerAgent",
    "heartbeatAgent",
    "dashboardMetrics",
}


def _generated() -> dict[str, Any]:
    return openapi_document()


def test_committed_openapi_yaml_matches_the_code() -> None:
    committed = yaml.safe_load((REPO / "openapi.yaml").read_text())
    assert committed == _generated(), (
        "openapi.yaml is stale: run `.venv/bin/shipyard openapi --output openapi.yaml`"
    )


def _full_path(contract_path: str) -> str:
    return contract_path if contract_path == "/metrics" else "/api/v1" + contract_path


def test_every_contract_operation_is_served_with_its_status() -> None:
    ours = _generated()["paths"]
    missing = []
    for operation_id, (method, path, op) in operations().items():
        if operation_id in NOT_YET_SERVED:
            continue
        served = ours.get(_full_path(path), {}).get(method.lower())
        if served is None:
            missing.append(f"{method} {path}")
            continue
        success = {s for s in op["responses"] if s.startswith("2")}
        assert success <= set(served["responses"]), (operation_id, success, served["responses"])
        assert served["operationId"] == operation_id
    assert missing == []


def test_the_pending_list_names_only_unserved_operations() -> None:
    ours = _generated()["paths"]
    for operation_id in NOT_YET_SERVED:
        method, path, _ = operations()[operation_id]
        assert method.lower() not in ours.get(_full_path(path), {}), f"{operation_id} is served now"
