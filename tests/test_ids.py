"""Public ids are UUIDv7: valid UUIDs that sort by creation time."""

from __future__ import annotations

import time
import uuid

from shipyard.ids import new_id


def test_ids_are_version_7_uuids() -> None:
    value = uuid.UUID(new_id())
    assert value.version == 7 and value.variant == uuid.RFC_4122


def test_ids_sort_by_time() -> None:
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_ids_are_unique() -> None:
    assert len({new_id() for _ in range(10_000)}) == 10_000
