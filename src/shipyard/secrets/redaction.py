"""Remove secret values from text before it is stored or streamed."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"
# Very short values ("1", "on") would mask ordinary words; they are not worth hiding.
MIN_SECRET_LENGTH = 4


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text
