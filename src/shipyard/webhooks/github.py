"""GitHub webhook basics: X-Hub-Signature-256 (HMAC-SHA256 over the raw body, constant-time
compare) and X-GitHub-Delivery de-duplication."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.clock import now_ms
from shipyard.db.dialect_sql import insert_if_absent
from shipyard.models import WebhookDelivery


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


async def first_delivery(session: AsyncSession, source: str, delivery_id: str | None) -> bool:
    """Record the delivery id; False when it was seen before (a replay or a redelivery)."""
    if not delivery_id:
        return True
    return await insert_if_absent(
        session,
        WebhookDelivery.__table__,  # type: ignore[arg-type]
        {"source": source, "delivery_id": delivery_id[:128], "received_at_ms": now_ms()},
    )


def normalise_repo_url(url: str) -> str:
    """git@github.com:o/r.git, https://github.com/o/r and ssh://git@github.com/o/r all match."""
    text = url.strip().lower().removesuffix("/").removesuffix(".git")
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    elif "@" in text and ":" in text:
        text = text.split("@", 1)[1].replace(":", "/", 1)
    return text
