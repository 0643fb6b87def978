"""Rules for API tokens: creation within the creator's own rights, revocation, authentication."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import SCOPES, Principal, highest_scope, normalise_scopes
from shipyard.auth.secrets import hash_secret, new_secret
from shipyard.clock import now_ms
from shipyard.errors import FieldError, Forbidden, Invalid, NotFound, Unauthorized
from shipyard.ids import new_id
from shipyard.models import ApiToken, User
from shipyard.tokens import credential_cache, repository

TokenKind = Literal["personal", "service"]
PREFIXES: dict[str, str] = {"personal": "sy_pat_", "service": "sy_svc_"}
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
# last_used_at is kept to this precision so a busy token does not turn every read into a write.
LAST_USED_PRECISION_MS = 30_000
JWT_ISSUER = "shipyard"


def _validate(name: str, scopes: list[str], expires_in_seconds: int | None) -> list[FieldError]:
    problems: list[FieldError] = []
    if not name.strip():
        problems.append(FieldError("name", "must not be empty"))
    elif len(name) > 128:
        problems.append(FieldError("name", "must be at most 128 characters"))
    if not scopes:
        problems.append(FieldError("scopes", f"give at least one of {', '.join(SCOPES)}"))
    for i, scope in enumerate(scopes):
        if scope not in SCOPES:
            problems.append(FieldError(f"scopes[{i}]", f"must be one of {', '.join(SCOPES)}"))
    if expires_in_seconds is not None and not 0 < expires_in_seconds <= MAX_TTL_SECONDS:
        problems.append(
            FieldError("expires_in_seconds", f"must be between 1 and {MAX_TTL_SECONDS}")
        )
    return problems


async def create_token(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    scopes: list[str],
    expires_in_seconds: int | None,
    kind: TokenKind = "personal",
    app_id: str | None = None,
) -> tuple[str, ApiToken]:
    """Make a token for the caller; the raw secret is returned here and never again."""
    problems = _validate(name, scopes, expires_in_seconds)
    if problems:
        raise Invalid("the token request is not valid", problems)
    wanted = normalise_scopes(scopes)
    if highest_scope(set(wanted)) > highest_scope(principal.scopes):
        raise Forbidden(
            "a token cannot have more rights than the credential that creates it",
            [FieldError("scopes", "reduce the scopes to those of your own credential")],
        )
    if principal.app_id is not None and app_id != principal.app_id:
        raise Forbidden("a token bound to one app can only create tokens bound to that app")
    now = now_ms()
    raw = new_secret(PREFIXES[kind])
    token = ApiToken(
        id=new_id(),
        user_id=principal.user_id,
        kind=kind,
        name=name.strip(),
        prefix=raw[:12],
        secret_hash=hash_secret(raw),
        scopes=" ".join(wanted),
        app_id=app_id,
        created_at_ms=now,
        expires_at_ms=now + expires_in_seconds * 1000 if expires_in_seconds else None,
    )
    session.add(token)
    await session.flush()
    return raw, token


async def list_tokens(session: AsyncSession, principal: Principal) -> list[ApiToken]:
    if principal.app_id is not None:  # a bound token sees only itself
        own = await repository.get(session, principal.token_id or "")
        return [own] if own else []
    return await repository.list_for(session, principal.user_id, everyone=principal.is_admin)


async def revoke_token(session: AsyncSession, principal: Principal, token_id: str) -> None:
    """Revoke a token the caller can see; revoking twice is harmless."""
    token = await repository.get(session, token_id)
    if token is None or not principal.owns(token.user_id):
        raise NotFound("token not found")
    if token.revoked_at_ms is None:
        token.revoked_at_ms = now_ms()
        await session.flush()


def looks_like_jwt(raw: str) -> bool:
    return raw.startswith("eyJ") and raw.count(".") == 2


async def issue_jwt(
    session: AsyncSession, user: User, signing_key: bytes, ttl_seconds: int, *, name: str = "jwt"
) -> tuple[str, ApiToken]:
    """A signed JWT for the user, with all of the user's scopes; revocable through its id (jti)."""
    now = now_ms()
    jti = new_id()
    token = ApiToken(
        id=jti,
        user_id=user.id,
        kind="jwt",
        name=name,
        prefix="eyJ",
        secret_hash=hash_secret(jti),
        scopes=" ".join(SCOPES),
        created_at_ms=now,
        expires_at_ms=now + ttl_seconds * 1000,
    )
    session.add(token)
    await session.flush()
    claims = {
        "sub": user.id,
        "jti": jti,
        "iat": now // 1000,
        "exp": now // 1000 + ttl_seconds,
        "iss": JWT_ISSUER,
    }
    import jwt  # imported on use: PyJWT loads the cryptography bindings (~6 MB resident)

    return jwt.encode(claims, signing_key, algorithm="HS256"), token


def _jwt_id(raw: str, signing_key: bytes | None) -> str:
    if signing_key is None:
        raise invalid_credentials("JWTs are not accepted here")
    import jwt  # imported on use: see issue_jwt

    try:
        claims = jwt.decode(
            raw,
            signing_key,
            algorithms=["HS256"],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise invalid_credentials("the JWT has expired") from None
    except jwt.PyJWTError:
        raise invalid_credentials("the JWT is not valid") from None
    return str(claims["jti"])


async def authenticate(
    session: AsyncSession, raw: str, signing_key: bytes | None = None
) -> tuple[Principal, bool]:
    """Resolve a bearer token (opaque or JWT) to a principal; the flag: last_used is stale."""
    secret = _jwt_id(raw, signing_key) if looks_like_jwt(raw) else raw
    secret_hash = hash_secret(secret)
    found = credential_cache.cache.get(secret_hash)
    if found is None:
        found = await repository.find_by_hash(session, secret_hash)
        if found is not None:
            credential_cache.cache.put(secret_hash, found)
    if found is None:
        raise invalid_credentials("the bearer token is not known")
    token = found
    now = now_ms()
    if token.revoked_at_ms is not None:
        raise invalid_credentials("the bearer token has been revoked")
    if token.expires_at_ms is not None and token.expires_at_ms <= now:
        raise invalid_credentials("the bearer token has expired")
    principal = Principal(
        user_id=token.user_id,
        role=token.role or "root",
        scopes=frozenset(token.scopes.split()),
        via="token",
        token_id=token.id,
        app_id=token.app_id,
        email=token.email,
    )
    stale = token.last_used_at_ms is None or now - token.last_used_at_ms >= LAST_USED_PRECISION_MS
    return principal, stale


async def record_use(session: AsyncSession, token_id: str) -> None:
    at = now_ms()
    await repository.touch(session, token_id, at)
    credential_cache.cache.record_use(token_id, at)


def invalid_credentials(message: str) -> Unauthorized:
    return Unauthorized(f"{message}; send a valid token as 'Authorization: Bearer <token>'")
