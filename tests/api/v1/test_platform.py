"""Health, metrics, request ids, OpenAPI and Swagger UI."""

from __future__ import annotations

from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope, assert_matches_contract


async def test_health_is_open_and_matches_the_contract(api: Api) -> None:
    r = await api.client.get("/api/v1/health")
    assert r.status_code == 200
    assert_matches_contract(r, "health")
    assert r.json()["status"] == "ok"


async def test_every_response_has_a_request_id(api: Api) -> None:
    r = await api.client.get("/api/v1/health")
    assert len(r.headers["x-request-id"]) >= 16


async def test_a_sane_incoming_request_id_is_kept(api: Api) -> None:
    r = await api.client.get("/api/v1/health", headers={"X-Request-Id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"


async def test_an_unsafe_incoming_request_id_is_replaced(api: Api) -> None:
    r = await api.client.get("/api/v1/health", headers={"X-Request-Id": "bad id\twith tabs"})
    assert r.headers["x-request-id"] != "bad id\twith tabs"


async def test_metrics_count_requests_by_route(api: Api, admin: Actor) -> None:
    app = await api.create_app(admin, "web")
    await api.client.get(f"/api/v1/apps/{app['id']}", headers=admin.headers)
    r = await api.client.get("/metrics", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'shipyard_http_requests_total{method="GET",route="/api/v1/apps/{app_id}",status="200"}'
        in text
    )
    assert "shipyard_http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_metrics_need_a_credential_by_default(api: Api, admin: Actor) -> None:
    assert_error_envelope(await api.client.get("/metrics"), 401)


async def test_openapi_and_swagger_ui_are_served(api: Api) -> None:
    spec = await api.client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/apps" in spec.json()["paths"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
