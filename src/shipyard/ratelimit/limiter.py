"""Sliding-window-counter limits: in memory by default, Redis when a redis:// URI is configured."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from shipyard.errors import RateLimited

GROUPS = ("read", "write", "auth", "webhook")


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the window frees up

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def _async_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    """One limit per route group; a client is a credential (token, user) or else an address."""

    def __init__(self, storage_uri: str, limits_by_group: dict[str, str]) -> None:
        self._storage = storage_from_string(_async_uri(storage_uri))
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)
        # A group may have several limits ("100/minute;1000/hour"); all must allow a request.
        self._items: dict[str, list[RateLimitItem]] = {
            g: parse_many(v) for g, v in limits_by_group.items()
        }

    async def hit(self, group: str, client: str) -> Verdict:
        """Count one request; raises RateLimited (429 with Retry-After) past any limit."""
        tightest: Verdict | None = None
        for item in self._items[group]:
            allowed = await self._strategy.hit(item, group, client)
            stats = await self._strategy.get_window_stats(item, group, client)
            verdict = Verdict(item.amount, max(stats.remaining, 0), math.ceil(stats.reset_time))
            if not allowed:
                retry_after = max(1, verdict.reset_at - int(time.time()))
                raise RateLimited(
                    f"too many requests in group {group!r}: the limit is {item}; "
                    f"retry after {retry_after} s",
                    headers={**verdict.headers(), "Retry-After": str(retry_after)},
                )
            # The headers describe the limit closest to running out.
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        assert tightest is not None
        return tightest

    async def reset(self) -> None:
        await self._storage.reset()  # type: ignore[misc]  # the async storage's reset is a coroutine
