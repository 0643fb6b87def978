"""Domains: hostname validation, global uniqueness, TLS modes, removal."""

from __future__ import annotations

import pytest

from tests.conftest import Actor, Api
from tests.contract import assert_error_envelope, assert_matches_contract


async def _app(api: Api, actor: Actor, name: str = "web") -> str:
    return str((await api.create_app(actor, name))["id"])


async def test_add_domain_normalises_the_hostname(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.post(
        f"/api/v1/apps/{app_id}/domains",
        json={"domain": "Shop.Example.COM."},
        headers=admin.headers,
    )
    assert r.status_code == 201
    assert_matches_contract(r, "createDomain")
    assert r.json()["domain"] == "shop.example.com" and r.json()["tls_mode"] == "managed"


async def test_list_domains(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    for host in ("b.example.com", "a.example.com"):
        await api.client.post(
            f"/api/v1/apps/{app_id}/domains", json={"domain": host}, headers=admin.headers
        )
    r = await api.client.get(f"/api/v1/apps/{app_id}/domains", headers=admin.headers)
    assert_matches_contract(r, "listDomains")
    assert [d["domain"] for d in r.json()["items"]] == ["a.example.com", "b.example.com"]


async def test_a_domain_belongs_to_one_app_across_users(
    api: Api, member: Actor, other: Actor
) -> None:
    mine = await _app(api, member, "mine")
    theirs = await _app(api, other, "theirs")
    await api.client.post(
        f"/api/v1/apps/{theirs}/domains", json={"domain": "x.example.com"}, headers=other.headers
    )
    r = await api.client.post(
        f"/api/v1/apps/{mine}/domains", json={"domain": "X.example.com"}, headers=member.headers
    )
    error = assert_error_envelope(r, 409, "domain_taken")
    assert "theirs" not in error["message"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "https://example.com",
        "example.com:8080",
        "exa mple.com",
        "-bad.example.com",
        "*.example.com",
        "10.0.0.1",
        "a" * 64 + ".example.com",
        "example.123",
    ],
)
async def test_bad_hostnames_are_rejected(api: Api, admin: Actor, bad: str) -> None:
    app_id = await _app(api, admin)
    r = await api.client.post(
        f"/api/v1/apps/{app_id}/domains", json={"domain": bad}, headers=admin.headers
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"][0]["field"] == "domain"
    assert (await api.client.get(f"/api/v1/apps/{app_id}/domains", headers=admin.headers)).json()[
        "items"
    ] == []


async def test_custom_tls_needs_cert_and_key(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.post(
        f"/api/v1/apps/{app_id}/domains",
        json={"domain": "a.example.com", "tls_mode": "custom"},
        headers=admin.headers,
    )
    error = assert_error_envelope(r, 400)
    assert {d["field"] for d in error["details"]} == {"cert_path", "key_path"}


async def test_custom_tls_with_paths(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.post(
        f"/api/v1/apps/{app_id}/domains",
        json={
            "domain": "a.example.com",
            "tls_mode": "custom",
            "cert_path": "/etc/ssl/a.pem",
            "key_path": "/etc/ssl/a.key",
        },
        headers=admin.headers,
    )
    assert r.status_code == 201 and r.json()["cert_path"] == "/etc/ssl/a.pem"


async def test_delete_domain(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    created = await api.client.post(
        f"/api/v1/apps/{app_id}/domains", json={"domain": "a.example.com"}, headers=admin.headers
    )
    r = await api.client.delete(
        f"/api/v1/apps/{app_id}/domains/{created.json()['id']}", headers=admin.headers
    )
    assert r.status_code == 204
    assert (await api.client.get(f"/api/v1/apps/{app_id}/domains", headers=admin.headers)).json()[
        "items"
    ] == []


async def test_delete_domain_through_another_app_is_404(api: Api, admin: Actor) -> None:
    one = await _app(api, admin, "one")
    two = await _app(api, admin, "two")
    created = await api.client.post(
        f"/api/v1/apps/{one}/domains", json={"domain": "a.example.com"}, headers=admin.headers
    )
    r = await api.client.delete(
        f"/api/v1/apps/{two}/domains/{created.json()['id']}", headers=admin.headers
    )
    assert_error_envelope(r, 404)
