"""The GitHub push webhook's verification and push reading, without HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shipyard.errors import Unauthorized
from shipyard.integrations.github_push import pushed_branch, repository_of, verified_integrations
from shipyard.models import GithubIntegration
from shipyard.secrets.keyring import Keyring

# docs.github.com "Validating webhook deliveries": this secret, payload and signature.
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring([Fernet.generate_key()], tmp_path / "secret.key")


def integration(keyring: Keyring, app_id: str, secret: str | None) -> GithubIntegration:
    ciphertext = keyring.encrypt(secret) if secret is not None else None
    return GithubIntegration(
        app_id=app_id, owner="o", repo="r", branch="main", webhook_secret_ciphertext=ciphertext
    )


def test_githubs_published_test_vector_verifies(keyring: Keyring) -> None:
    wrong = integration(keyring, "a", "another secret")
    right = integration(keyring, "b", VECTOR_SECRET)
    assert verified_integrations([wrong, right], keyring, VECTOR_BODY, VECTOR_SIGNATURE) == [right]


def test_one_changed_byte_fails_the_test_vector(keyring: Keyring) -> None:
    with pytest.raises(Unauthorized) as caught:
        verified_integrations(
            [integration(keyring, "a", VECTOR_SECRET)], keyring, b"Hello, World?", VECTOR_SIGNATURE
        )
    assert caught.value.code == "bad_signature"


def test_integrations_without_a_secret_never_verify(keyring: Keyring) -> None:
    with pytest.raises(Unauthorized) as caught:
        verified_integrations(
            [integration(keyring, "a", None)], keyring, VECTOR_BODY, VECTOR_SIGNATURE
        )
    assert caught.value.code == "no_webhook_secret"


@pytest.mark.parametrize(
    ("event", "payload", "why"),
    [
        ("ping", {}, "ping"),
        ("issues", {}, "'issues' does not deploy"),
        (None, {}, "'(none)' does not deploy"),
        ("push", {"ref": "refs/tags/v1", "after": "a" * 40}, "tag push (v1)"),
        ("push", {"ref": "refs/heads/x", "after": "0" * 40, "deleted": True}, "was deleted"),
        ("push", {"ref": "refs/heads/x", "after": "nope"}, "names no commit"),
        ("push", {"ref": "refs/pull/1/head", "after": "a" * 40}, "not a branch push"),
    ],
)
def test_what_does_not_deploy_says_why(
    event: str | None, payload: dict[str, object], why: str
) -> None:
    branch, reason = pushed_branch(event, payload)
    assert branch is None and why in reason


def test_a_branch_push_gives_branch_and_commit() -> None:
    payload = {"ref": "refs/heads/feature/x", "after": "ab" * 20}
    assert pushed_branch("push", payload) == ("feature/x", "ab" * 20)


@pytest.mark.parametrize(
    "payload", [{}, {"repository": "acme/hello"}, {"repository": {"full_name": 7}}]
)
def test_a_payload_without_a_repository_names_none(payload: dict[str, object]) -> None:
    assert repository_of(payload) == ("", "")
