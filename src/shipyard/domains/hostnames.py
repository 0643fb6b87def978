"""Hostname validation (RFC 1123 labels, no IP addresses, no wildcards)."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_hostname(raw: str) -> str:
    """Lowercase, without a trailing dot; raises ValueError saying what is wrong."""
    host = raw.strip().lower().removesuffix(".")
    if not host:
        raise ValueError("must not be empty")
    if len(host) > 253:
        raise ValueError("must be at most 253 characters")
    if "://" in host or "/" in host or ":" in host:
        raise ValueError(
            "give a bare hostname such as app.example.com, without scheme, port or path"
        )
    if host.startswith("*."):
        raise ValueError("wildcard domains are not supported; add each hostname")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValueError("must be a hostname, not an IP address")
    if "" in host.split("."):
        raise ValueError("has an empty label (two dots in a row, or a leading dot)")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError("is not a valid internationalised hostname") from exc
    labels = ascii_host.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(
                f"label {label!r} must be 1-63 letters, digits or hyphens, "
                "not starting or ending with a hyphen"
            )
    if labels[-1].isdigit():
        raise ValueError("the top-level label must not be all digits")
    return ascii_host
