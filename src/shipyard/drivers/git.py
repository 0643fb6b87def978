"""Git driver: the only code that runs git (argv lists, no prompts, a timeout per command)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from shipyard.errors import FieldError, Invalid, ShipyardError

ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")
NETWORK_TIMEOUT = 300.0
LOCAL_TIMEOUT = 120.0
DNS_TIMEOUT = 10.0
STDERR_TAIL_LINES = 5
MAX_URL_LENGTH = 2048

# Cloud metadata services by name and the addresses that are not link-local (Alibaba, AWS IPv6).
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com"}
    | {"instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
)

# Variables that would point git at some other repository (set e.g. when running inside a hook).
_REPO_ENV = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"}
    | {"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX"}
)
# ext:: runs arbitrary commands; URLs are validated already, this is the second lock.
_SAFE_CONFIG = ("-c", "protocol.ext.allow=never")

_SCP_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._~+%-]+)@)?"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])"
    r":(?P<path>[^:\-].*)$"
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
_CONTROL_OR_SPACE_RE = re.compile(r"[\x00-\x20\x7f]")


@dataclass
class GitError(ShipyardError):
    """A git command failed; the message names what was attempted and ends with git's words."""

    code: str = "git_error"
    status: int = 502
    stderr: str = ""


@dataclass
class RefNotFound(GitError):
    """The branch, tag or commit asked for does not exist in the repository."""

    code: str = "git_ref_not_found"
    status: int = 400


@dataclass
class InvalidGitInput(GitError, Invalid):
    """A URL, ref or commit id that git must not be given; both a GitError and an Invalid."""

    code: str = "validation_error"
    status: int = 400


def invalid_field(field: str, message: str) -> InvalidGitInput:
    """One bad input field, named by ``field``."""
    return InvalidGitInput(f"{field}: {message}", [FieldError(field, message)])


class CommitInfo(NamedTuple):
    """One commit as shown to users."""

    sha: str
    subject: str
    author: str


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


def validate_url(url: str, *, field: str = "url") -> str:
    """Return ``url`` unchanged if git may fetch it; raise Invalid saying what is wrong."""
    if not url:
        raise invalid_field(field, "a repository URL is required")
    if url.startswith("-"):
        raise invalid_field(field, "must not start with '-' (git would read it as an option)")
    if len(url) > MAX_URL_LENGTH:
        raise invalid_field(field, f"longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_OR_SPACE_RE.search(url):
        raise invalid_field(field, "must not contain spaces or control characters")
    if "://" in url:
        _validate_scheme_url(url, field)
    elif not _SCP_RE.match(url):
        raise invalid_field(
            field,
            "not a git URL: use https://host/owner/repo.git, ssh://user@host/path, "
            "git://host/path, file:///path or user@host:path",
        )
    return url


def _validate_scheme_url(url: str, field: str) -> None:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise invalid_field(field, f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise invalid_field(
            field,
            f"scheme {scheme or '(none)'!r} is not supported; "
            f"use {', '.join(ALLOWED_SCHEMES)} or user@host:path",
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise invalid_field(field, "a file URL looks like file:///absolute/path/to/repo")
        return
    if not hostname:
        raise invalid_field(field, f"a {scheme} URL needs a host")
    # ssh://-oProxyCommand=... would reach ssh as an option (CVE-2017-1000117).
    if hostname.startswith("-") or (parts.username or "").startswith("-"):
        raise invalid_field(field, "host and user must not start with '-'")


def _scheme_and_host(url: str) -> tuple[str, str]:
    if "://" in url:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname or ""
    match = _SCP_RE.match(url)
    return "ssh", (match.group("host").strip("[]") if match else "")


async def check_url_not_internal(url: str, *, allow_file: bool = False, field: str = "url") -> None:
    """Refuse URLs that reach link-local or cloud metadata addresses (SSRF); loopback is fine."""
    validate_url(url, field=field)
    scheme, host = _scheme_and_host(url)
    if scheme == "file":
        if not allow_file:
            raise invalid_field(field, "file:// repositories are not allowed here")
        return
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        raise invalid_field(field, f"host {name!r} is a cloud metadata service")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), DNS_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        raise invalid_field(field, f"host {name!r} does not resolve; check the URL") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if _is_forbidden(address):
            raise invalid_field(
                field,
                f"host {name!r} resolves to {address}, a link-local or cloud metadata address",
            )


def _is_forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local or address in METADATA_ADDRESSES


def _userinfo(url: str) -> str:
    """The credentials part of an http(s) URL, or of any URL that carries a password."""
    if "://" not in url:
        return ""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return ""
    userinfo = parts.netloc.rsplit("@", 1)[0]
    # Tokens often travel as the http user name (https://TOKEN@host); an ssh user is not secret.
    if parts.scheme.lower() in ("http", "https") or ":" in userinfo:
        return userinfo
    return ""


def redact_url(url: str) -> str:
    """The URL without credentials, fit for messages and logs."""
    userinfo = _userinfo(url)
    return url.replace(f"{userinfo}@", "***@", 1) if userinfo else url


def _secrets_in(url: str) -> list[str]:
    userinfo = _userinfo(url)
    return sorted({userinfo, *userinfo.split(":", 1)} - {""}, key=len, reverse=True)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    # GIT_TERMINAL_PROMPT does not stop ssh itself from asking for a password or host key.
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    # English messages, so the errors users see and tests match read the same everywhere.
    env["LC_ALL"] = "C"
    return env


def _kill(proc: asyncio.subprocess.Process) -> None:
    # git forks helpers (remote-https, ssh, index-pack); its session holds them all.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _git(
    args: list[str],
    *,
    what: str,
    limit: float,
    url: str | None = None,
    check: bool = True,
) -> _Result:
    argv = ["git", *_SAFE_CONFIG, *args]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise GitError(f"{what}: git is not installed on this machine (no 'git' on PATH)") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise GitError(f"{what}: git did not finish within {limit:g} seconds") from None
    except asyncio.CancelledError:
        _kill(proc)
        raise
    stderr = err.decode("utf-8", "replace")
    for secret in _secrets_in(url or ""):
        stderr = stderr.replace(secret, "***")
    result = _Result(proc.returncode or 0, out.decode("utf-8", "replace"), stderr)
    if check and result.returncode != 0:
        raise GitError(_failure(what, result), stderr=stderr)
    return result


def _failure(what: str, result: _Result) -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    tail = "; ".join(lines[-STDERR_TAIL_LINES:]) or "(git printed nothing)"
    return f"{what}: git exited with {result.returncode}: {tail}"


def _validate_ref(ref: str) -> None:
    if not ref or ref.startswith("-") or _CONTROL_OR_SPACE_RE.search(ref) or len(ref) > 255:
        raise invalid_field("ref", "not a valid branch, tag or commit name")


def _validate_sha(sha: str) -> None:
    if not _HEX_RE.match(sha):
        raise invalid_field("sha", "a commit id is 4 to 64 hexadecimal characters")


async def resolve(
    url: str,
    ref: str,
    *,
    cache_dir: Path | None = None,
    command_timeout: float = NETWORK_TIMEOUT,
) -> str:
    """The full commit id that ``ref`` (branch, tag, HEAD, full or short sha) names in ``url``."""
    validate_url(url)
    _validate_ref(ref)
    shown = redact_url(url)
    listing = await _git(
        ["ls-remote", "--", url, ref, f"{ref}^{{}}"],
        what=f"could not list refs of {shown}",
        limit=command_timeout,
        url=url,
    )
    refs: dict[str, str] = {}
    for line in listing.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    # git's own order for a short name: exact, refs/..., tags, then branches.
    for name in (ref, f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if name in refs:
            return refs.get(f"{name}^{{}}", refs[name])
    if not _HEX_RE.match(ref):
        raise _ref_not_found(ref, shown)
    # No ref points at this commit id: only a copy of the objects can tell whether it exists.
    if cache_dir is not None:
        await mirror(url, cache_dir, command_timeout=command_timeout)
        return await _rev_parse(cache_dir, ref, shown)
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-resolve-"))
    try:
        cache = await mirror(url, scratch / "mirror.git", command_timeout=command_timeout)
        return await _rev_parse(cache, ref, shown)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)


async def resolve_cached(cache_dir: Path, ref: str) -> str:
    """The full commit id ``ref`` names in a mirror made by ``mirror`` (no network)."""
    _validate_ref(ref)
    return await _rev_parse(Path(cache_dir), ref, str(cache_dir))


def _ref_not_found(ref: str, shown: str) -> RefNotFound:
    return RefNotFound(
        f"{ref!r} is not a branch, tag or commit of {shown}; check the name, or push it first"
    )


async def _rev_parse(cache_dir: Path, rev: str, shown: str) -> str:
    commit = f"{rev}^{{commit}}"
    result = await _git(
        [f"--git-dir={cache_dir}", "rev-parse", "--verify", "--end-of-options", commit],
        what=f"could not find {rev!r}",
        limit=LOCAL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        if "ambiguous" in result.stderr:
            raise RefNotFound(f"{rev!r} matches several commits of {shown}; give more characters")
        raise _ref_not_found(rev, shown)
    return result.stdout.strip()


def _is_file_url_of(url: str, path: Path) -> bool:
    # Mirroring the cache into itself would point its origin at itself and lose the source.
    return url.startswith("file:") and Path(unquote(urlsplit(url).path)).resolve() == path.resolve()


def _is_bare_repo(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "config").is_file()


_locks: dict[tuple[int, Path], asyncio.Lock] = {}


def _lock_for(path: Path) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), path.resolve())
    return _locks.setdefault(key, asyncio.Lock())


async def mirror(url: str, cache_dir: Path, *, command_timeout: float = NETWORK_TIMEOUT) -> Path:
    """Bring the bare mirror of ``url`` at ``cache_dir`` up to date (cloning it the first time)."""
    validate_url(url)
    cache_dir = Path(cache_dir)
    shown = redact_url(url)
    if _is_file_url_of(url, cache_dir):
        raise invalid_field("url", "is the cache itself; use resolve_cached() to read it")
    async with _lock_for(cache_dir):
        if _is_bare_repo(cache_dir):
            git_dir = f"--git-dir={cache_dir}"
            # The source may have moved or its credentials changed since the last fetch.
            await _git(
                [git_dir, "remote", "set-url", "origin", url],
                what=f"could not point the cache at {shown}",
                limit=LOCAL_TIMEOUT,
                url=url,
            )
            await _git(
                [git_dir, "remote", "update", "--prune"],
                what=f"could not fetch {shown}",
                limit=command_timeout,
                url=url,
            )
            return cache_dir
        if cache_dir.exists() and any(cache_dir.iterdir()):
            raise GitError(f"{cache_dir} exists and is not a git mirror; remove it and retry")
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        # Clone beside the target and rename, so an interrupted clone never looks like a cache.
        partial = cache_dir.with_name(f".{cache_dir.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            # Rollbacks may need commits that a force-push or deleted branch left unreachable;
            # git must never collect them from the cache.
            keep = ("--config", "gc.auto=0", "--config", "gc.pruneExpire=never")
            await _git(
                ["clone", "--mirror", "--quiet", *keep, "--", url, str(partial)],
                what=f"could not clone {shown}",
                limit=command_timeout,
                url=url,
            )
            os.replace(partial, cache_dir)
        finally:
            if partial.exists():
                await asyncio.to_thread(shutil.rmtree, partial, ignore_errors=True)
    return cache_dir


async def checkout(
    cache_dir: Path, sha: str, dest: Path, *, command_timeout: float = LOCAL_TIMEOUT
) -> Path:
    """A clean work tree of exactly commit ``sha`` at ``dest`` (replaced), from the cache only."""
    _validate_sha(sha)
    cache_dir, dest = Path(cache_dir), Path(dest)
    if not _is_bare_repo(cache_dir):
        raise GitError(f"{cache_dir} is not a git mirror; fetch the source first")
    full = await _rev_parse(cache_dir, sha, str(cache_dir))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Build beside dest and swap it in, so dest is never a half-written tree.
    staging = dest.with_name(f".{dest.name}.staging-{uuid.uuid4().hex[:8]}")
    trash = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        # --shared: dest/.git borrows the cache's objects (cheap); the files do not depend on it.
        await _git(
            ["clone", "--shared", "--no-checkout", "--quiet", "--", str(cache_dir), str(staging)],
            what=f"could not prepare a work tree for {full}",
            limit=command_timeout,
        )
        quiet = ("-c", "advice.detachedHead=false")
        await _git(
            ["-C", str(staging), *quiet, "checkout", "--quiet", "--detach", full],
            what=f"could not check out {full}",
            limit=command_timeout,
        )
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.exists():
            os.replace(dest, trash)
        os.replace(staging, dest)
    finally:
        for leftover in (staging, trash):
            if leftover.exists():
                await asyncio.to_thread(shutil.rmtree, leftover, ignore_errors=True)
    return dest


async def default_branch(cache_dir: Path) -> str | None:
    """The branch the mirrored repository's HEAD points at (its default branch), if any."""
    result = await _git(
        [f"--git-dir={cache_dir}", "symbolic-ref", "--quiet", "HEAD"],
        what="could not read the default branch",
        limit=LOCAL_TIMEOUT,
        check=False,
    )
    ref = result.stdout.strip()
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


async def commit_info(cache_dir: Path, sha: str) -> CommitInfo:
    """Full id, subject line and author name of commit ``sha`` in the cache."""
    _validate_sha(sha)
    full = await _rev_parse(Path(cache_dir), sha, str(cache_dir))
    result = await _git(
        [f"--git-dir={cache_dir}", "log", "-1", "--format=%H%x00%s%x00%an", full, "--"],
        what=f"could not read commit {full}",
        limit=LOCAL_TIMEOUT,
    )
    full_sha, subject, author = [*result.stdout.rstrip("\n").split("\x00"), "", ""][:3]
    return CommitInfo(full_sha, subject, author)
