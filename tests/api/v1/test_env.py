"""Env vars: encrypted at rest, masked, bulk atomic upsert, key validation."""

from __future__ import annotations

from sqlalchemy import select

from shipyard.models import AppEnvVar
from tests.conftest import Actor, Api, bearer
from tests.contract import assert_error_envelope, assert_matches_contract


async def _app(api: Api, actor: Actor) -> str:
    return str((await api.create_app(actor, "web"))["id"])


async def test_put_one_variable_answers_the_contract_shape(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "DATABASE_URL", "value": "postgres://s3cret"},
        headers=admin.headers,
    )
    assert r.status_code == 200
    assert_matches_contract(r, "upsertAppEnvVar")
    assert r.json()["key"] == "DATABASE_URL" and r.json()["value"] == "********"


async def test_values_are_masked_in_lists(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "TOKEN", "value": "s3cret"},
        headers=admin.headers,
    )
    r = await api.client.get(f"/api/v1/apps/{app_id}/env", headers=admin.headers)
    assert_matches_contract(r, "listAppEnvVars")
    assert "s3cret" not in r.text
    assert r.json()["items"][0]["masked"] is True


async def test_admin_scope_can_reveal_values(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "TOKEN", "value": "s3cret"},
        headers=admin.headers,
    )
    r = await api.client.get(f"/api/v1/apps/{app_id}/env?reveal=true", headers=admin.headers)
    assert r.json()["items"][0]["value"] == "s3cret"


async def test_read_scope_cannot_reveal_values(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    read_token, _ = await api.token_for(admin.email or "", ["read"])
    r = await api.client.get(f"/api/v1/apps/{app_id}/env?reveal=true", headers=bearer(read_token))
    assert_error_envelope(r, 403, "forbidden")


async def test_values_are_encrypted_at_rest(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "TOKEN", "value": "s3cret-value"},
        headers=admin.headers,
    )
    ctx = api.client._transport.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.reading() as session:
        stored = (await session.execute(select(AppEnvVar.value_ciphertext))).scalar_one()
    assert "s3cret-value" not in stored
    assert ctx.keyring.decrypt(stored) == "s3cret-value"


async def test_bulk_upsert_sets_all(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"items": [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]},
        headers=admin.headers,
    )
    assert r.status_code == 200
    assert [i["key"] for i in r.json()["items"]] == ["A", "B"]


async def test_bulk_upsert_with_one_bad_key_changes_nothing(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    await api.client.put(
        f"/api/v1/apps/{app_id}/env", json={"key": "A", "value": "old"}, headers=admin.headers
    )
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"items": [{"key": "A", "value": "new"}, {"key": "2BAD", "value": "x"}]},
        headers=admin.headers,
    )
    error = assert_error_envelope(r, 400, "validation_error")
    assert error["details"][0]["field"] == "items[1].key"
    listed = await api.client.get(f"/api/v1/apps/{app_id}/env?reveal=true", headers=admin.headers)
    assert [(i["key"], i["value"]) for i in listed.json()["items"]] == [("A", "old")]


async def test_duplicate_keys_in_one_request_are_rejected(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"items": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]},
        headers=admin.headers,
    )
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "items[1].key"


async def test_upsert_overwrites_an_existing_value(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    for value in ("one", "two"):
        await api.client.put(
            f"/api/v1/apps/{app_id}/env", json={"key": "A", "value": value}, headers=admin.headers
        )
    listed = await api.client.get(f"/api/v1/apps/{app_id}/env?reveal=true", headers=admin.headers)
    assert [(i["key"], i["value"]) for i in listed.json()["items"]] == [("A", "two")]


async def test_delete_removes_a_variable(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    await api.client.put(
        f"/api/v1/apps/{app_id}/env", json={"key": "A", "value": "1"}, headers=admin.headers
    )
    r = await api.client.delete(f"/api/v1/apps/{app_id}/env/A", headers=admin.headers)
    assert r.status_code == 204
    assert (await api.client.get(f"/api/v1/apps/{app_id}/env", headers=admin.headers)).json()[
        "items"
    ] == []


async def test_delete_of_a_missing_key_is_404(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.delete(f"/api/v1/apps/{app_id}/env/NOPE", headers=admin.headers)
    assert_error_envelope(r, 404)


async def test_key_and_items_together_are_rejected(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "A", "value": "1", "items": [{"key": "B", "value": "2"}]},
        headers=admin.headers,
    )
    assert_error_envelope(r, 400, "validation_error")


async def test_oversized_value_is_rejected(api: Api, admin: Actor) -> None:
    app_id = await _app(api, admin)
    r = await api.client.put(
        f"/api/v1/apps/{app_id}/env",
        json={"key": "BIG", "value": "x" * (64 * 1024 + 1)},
        headers=admin.headers,
    )
    assert assert_error_envelope(r, 400)["details"][0]["field"] == "value"
