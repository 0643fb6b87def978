"""In-process publish/subscribe. Subscribers get every event published after they subscribed, in
order; a slow subscriber's queue is bounded and it is told it fell behind rather than stalling
the publisher."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

QUEUE_SIZE = 10_000
OVERFLOW = {"type": "overflow"}


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(topic, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                queue.get_nowait()
                queue.put_nowait(OVERFLOW)

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """One queue for the events of every topic given."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        for topic in topics:
            self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics:
                self._subscribers[topic].discard(queue)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def log_topic(run_id: str) -> str:
    return f"logs:{run_id}"


def app_topic(app_id: str) -> str:
    """An app's own events: {"type": "deployment"} when one of its deployments starts."""
    return f"app:{app_id}"
