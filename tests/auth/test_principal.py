"""Scopes nest (admin > deploy > read); object access follows ownership and app binding."""

from __future__ import annotations

from shipyard.auth.principal import Principal


def _p(*scopes: str, role: str = "member", app_id: str | None = None) -> Principal:
    return Principal(user_id="u1", role=role, scopes=frozenset(scopes), via="token", app_id=app_id)


def test_scopes_nest() -> None:
    assert _p("admin").has_scope("read") and _p("admin").has_scope("deploy")
    assert _p("deploy").has_scope("read") and not _p("deploy").has_scope("admin")
    assert not _p("read").has_scope("deploy")


def test_members_own_only_their_objects() -> None:
    assert _p("read").owns("u1") and not _p("read").owns("u2") and not _p("read").owns(None)


def test_admins_own_everything() -> None:
    assert _p("read", role="admin").owns("u2")


def test_app_binding_limits_even_admins() -> None:
    bound = _p("admin", role="admin", app_id="a1")
    assert bound.may_touch_app("a1", "u2") and not bound.may_touch_app("a2", "u1")
