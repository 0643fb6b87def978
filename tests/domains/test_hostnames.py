"""Hostname normalisation and validation."""

from __future__ import annotations

import pytest

from shipyard.domains.hostnames import normalise_hostname


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("app.example.com.", "app.example.com"),
        ("my-app.localhost", "my-app.localhost"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
    ],
)
def test_valid(raw: str, expected: str) -> None:
    assert normalise_hostname(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("::1", "bare hostname"),
        ("127.0.0.1", "IP address"),
        ("*.example.com", "wildcard"),
        ("a_b.example.com", "label"),
        ("a..example.com", "empty label"),
        ("x" * 254, "253"),
        ("example.42", "top-level"),
    ],
)
def test_invalid(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_hostname(raw)
