"""Random credentials: shown once, stored as SHA-256, compared through the hash lookup."""

from __future__ import annotations

import hashlib
import secrets

SESSION_PREFIX = "sy_ses_"
RESET_PREFIX = "sy_rst_"


def new_secret(prefix: str) -> str:
    """32 random bytes, URL-safe, behind a prefix that tells what kind of credential it is."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
