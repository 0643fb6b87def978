"""Page/limit pagination shared by list endpoints that page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.errors import FieldError, Invalid

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    limit: int = 20

    def __post_init__(self) -> None:
        problems = []
        if self.page < 1:
            problems.append(FieldError("page", "must be 1 or more"))
        if not 1 <= self.limit <= 100:
            problems.append(FieldError("limit", "must be between 1 and 100"))
        if problems:
            raise Invalid("invalid pagination", problems)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    limit: int
    total: int

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit)) if self.total else 0


async def paginate(session: AsyncSession, query: Select[T], request: PageRequest) -> Page[T]:
    total = int(
        await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    )
    rows = await session.execute(
        query.limit(request.limit).offset((request.page - 1) * request.limit)
    )
    return Page(list(rows.scalars()), request.page, request.limit, total)
