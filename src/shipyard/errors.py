"""Errors that carry their meaning; each dialect renders them in its own envelope."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field, named by its path (``items[2].key``)."""

    field: str
    message: str


@dataclass
class ShipyardError(Exception):
    """Base of every error a service raises; ``status`` is its HTTP meaning."""

    message: str
    details: list[FieldError] = field(default_factory=list)
    code: str = "error"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class Invalid(ShipyardError):
    code: str = "validation_error"
    status: int = 400


@dataclass
class Unauthorized(ShipyardError):
    code: str = "unauthorized"
    status: int = 401
    headers: dict[str, str] = field(default_factory=lambda: {"WWW-Authenticate": "Bearer"})


@dataclass
class Forbidden(ShipyardError):
    code: str = "forbidden"
    status: int = 403


@dataclass
class NotFound(ShipyardError):
    code: str = "not_found"
    status: int = 404


@dataclass
class Conflict(ShipyardError):
    code: str = "conflict"
    status: int = 409


@dataclass
class PayloadTooLarge(ShipyardError):
    code: str = "payload_too_large"
    status: int = 413


@dataclass
class RateLimited(ShipyardError):
    code: str = "rate_limited"
    status: int = 429


@dataclass
class Unavailable(ShipyardError):
    code: str = "unavailable"
    status: int = 503


def invalid_field(field_path: str, message: str) -> Invalid:
    """Shortcut for the common case of one bad field."""
    return Invalid(f"{field_path}: {message}", [FieldError(field_path, message)])
