"""GitHub OAuth code exchange and user lookup (any GitHub-compatible server: URLs are settings)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from shipyard.errors import ShipyardError


def _httpx() -> ModuleType:
    """httpx, imported on first use: importing it pulls in rich and pygments (its CLI), about
    10 MB the idle server should not carry."""
    import httpx

    return httpx


@dataclass
class GithubError(ShipyardError):
    """GitHub (or the configured provider) refused or could not be reached."""

    code: str = "github_error"


@dataclass(frozen=True)
class GithubUser:
    id: str
    login: str
    email: str | None


class GithubOAuth:
    def __init__(self, client_id: str, client_secret: str, token_url: str, api_url: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.token_url, self.api_url = token_url, api_url.rstrip("/")

    async def exchange_code(self, code: str, redirect_uri: str) -> str:
        """Trade the callback's code for an access token."""
        async with _httpx().AsyncClient(timeout=15) as client:
            try:
                r = await client.post(
                    self.token_url,
                    data={
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                        "code": code,
                        "redirect_uri": redirect_uri,
                    },
                    headers={"Accept": "application/json"},
                )
            except _httpx().HTTPError as exc:
                raise GithubError(f"GitHub could not be reached: {exc}", status=502) from exc
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or f"HTTP {r.status_code}"
            raise GithubError(
                f"GitHub refused the OAuth code: {reason}", status=401, code="oauth_failed"
            )
        return str(body["access_token"])

    async def user(self, access_token: str) -> GithubUser:
        headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/vnd.github+json",
        }
        async with _httpx().AsyncClient(timeout=15, headers=headers) as client:
            try:
                r = await client.get(f"{self.api_url}/user")
                email = r.json().get("email") if r.status_code == 200 else None
                if r.status_code == 200 and not email:
                    emails = await client.get(f"{self.api_url}/user/emails")
                    if emails.status_code == 200:
                        primary = [
                            e for e in emails.json() if e.get("primary") and e.get("verified")
                        ]
                        email = primary[0]["email"] if primary else None
            except _httpx().HTTPError as exc:
                raise GithubError(f"GitHub could not be reached: {exc}", status=502) from exc
        if r.status_code != 200:
            raise GithubError(f"GitHub did not return the user (HTTP {r.status_code})", status=401)
        data = r.json()
        return GithubUser(str(data["id"]), str(data["login"]), email)
