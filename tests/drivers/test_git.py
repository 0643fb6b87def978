"""The git driver against real local repositories (no network)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.drivers import git
from shipyard.errors import Invalid

AUTHOR = ["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com"]


def run_git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` for test setup and return its output."""
    done = subprocess.run(
        ["git", *AUTHOR, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit(repo: Path, name: str, content: str, message: str) -> str:
    (repo / name).write_text(content)
    run_git(repo, "add", name)
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD")


@dataclass
class Origin:
    path: Path
    url: str
    first: str
    second: str
    feature: str


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    """A repository with main (two commits), an annotated tag v1 on the first, and a branch."""
    repo = tmp_path / "origin"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    first = commit(repo, "app.txt", "one\n", "First version")
    run_git(repo, "tag", "-a", "v1", "-m", "release one")
    second = commit(repo, "app.txt", "two\n", "Second version")
    run_git(repo, "switch", "-q", "-c", "feature")
    feature = commit(repo, "feature.txt", "wip\n", "Feature work")
    run_git(repo, "switch", "-q", "main")
    return Origin(repo, repo.as_uri(), first, second, feature)


async def test_resolve_branch_returns_its_tip(origin: Origin) -> None:
    assert await git.resolve(origin.url, "main") == origin.second


async def test_resolve_annotated_tag_returns_the_commit(origin: Origin) -> None:
    assert await git.resolve(origin.url, "v1") == origin.first


async def test_resolve_head_returns_the_default_branch_tip(origin: Origin) -> None:
    assert await git.resolve(origin.url, "HEAD") == origin.second


async def test_resolve_full_sha_of_an_older_commit(origin: Origin) -> None:
    assert await git.resolve(origin.url, origin.first) == origin.first


async def test_resolve_short_sha_using_the_cache(origin: Origin, tmp_path: Path) -> None:
    resolved = await git.resolve(origin.url, origin.first[:8], cache_dir=tmp_path / "cache")
    assert resolved == origin.first


async def test_resolve_cached_needs_no_origin(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    shutil.rmtree(origin.path)
    assert await git.resolve_cached(cache, "feature") == origin.feature


async def test_mirroring_the_cache_into_itself_is_refused(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    with pytest.raises(Invalid) as caught:
        await git.mirror(cache.as_uri(), cache)
    assert "use resolve_cached()" in caught.value.message


async def test_resolve_unknown_branch_names_it_and_the_repository(origin: Origin) -> None:
    with pytest.raises(git.RefNotFound) as caught:
        await git.resolve(origin.url, "no-such-branch")
    assert "'no-such-branch' is not a branch, tag or commit" in caught.value.message
    assert origin.url in caught.value.message
    assert caught.value.status == 400


async def test_resolve_unknown_sha_is_ref_not_found(origin: Origin) -> None:
    with pytest.raises(git.RefNotFound):
        await git.resolve(origin.url, "deadbeef" * 5)


async def test_missing_repository_error_carries_git_stderr(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()
    with pytest.raises(git.GitError) as caught:
        await git.resolve(url, "main")
    assert caught.value.message.startswith(f"could not list refs of {url}: git exited with 128")
    assert "does not appear to be a git repository" in caught.value.message


async def test_mirror_then_checkout_older_commit_without_the_origin(
    origin: Origin, tmp_path: Path
) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    shutil.rmtree(origin.path)

    tree = await git.checkout(cache, origin.first, tmp_path / "work")

    assert (tree / "app.txt").read_text() == "one\n"
    assert run_git(tree, "rev-parse", "HEAD") == origin.first


async def test_mirror_again_fetches_new_commits(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    third = commit(origin.path, "app.txt", "three\n", "Third version")

    await git.mirror(origin.url, cache)

    assert (await git.commit_info(cache, third)).subject == "Third version"


async def test_commit_of_a_deleted_branch_stays_checkoutable(
    origin: Origin, tmp_path: Path
) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    run_git(origin.path, "branch", "-q", "-D", "feature")
    await git.mirror(origin.url, cache)

    tree = await git.checkout(cache, origin.feature, tmp_path / "work")

    assert (tree / "feature.txt").read_text() == "wip\n"


async def test_checkout_replaces_an_existing_tree(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    dest = tmp_path / "work"
    await git.checkout(cache, origin.feature, dest)
    (dest / "stray.log").write_text("left over")

    await git.checkout(cache, origin.first[:10], dest)

    assert sorted(p.name for p in dest.iterdir()) == [".git", "app.txt"]
    assert (dest / "app.txt").read_text() == "one\n"


async def test_checkout_of_an_unknown_commit_says_so(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    with pytest.raises(git.RefNotFound) as caught:
        await git.checkout(cache, "0" * 40, tmp_path / "work")
    assert "is not a branch, tag or commit" in caught.value.message
    assert not (tmp_path / "work").exists()


async def test_commit_info_gives_sha_subject_and_author(origin: Origin, tmp_path: Path) -> None:
    cache = await git.mirror(origin.url, tmp_path / "cache.git")
    info = await git.commit_info(cache, origin.first[:7])
    assert info == (origin.first, "First version", "Ada Lovelace")


async def test_a_git_command_that_hangs_is_stopped_at_its_timeout() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open until git is killed
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(git.GitError) as caught:
            await git.resolve(f"git://127.0.0.1:{port}/repo.git", "main", command_timeout=0.5)
    assert "did not finish within 0.5 seconds" in caught.value.message


async def test_option_injection_url_is_refused_before_git_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(Invalid) as caught:
        await git.resolve(f"--upload-pack=touch {marker}", "main")
    assert caught.value.details[0].field == "url"
    assert "must not start with '-'" in caught.value.details[0].message
    assert not marker.exists()


def test_bad_urls_are_git_errors_too_for_callers_that_catch_those() -> None:
    with pytest.raises(git.GitError) as caught:
        git.validate_url("ftp://example.com/repo.git")
    assert caught.value.status == 400


def test_ftp_url_is_refused_naming_the_scheme() -> None:
    with pytest.raises(Invalid) as caught:
        git.validate_url("ftp://example.com/repo.git")
    assert "scheme 'ftp' is not supported" in caught.value.details[0].message


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/team/app.git",
        "http://192.168.1.10:3000/team/app.git",
        "ssh://git@git.example.com:2222/team/app.git",
        "git://git.example.com/app.git",
        "file:///srv/git/app.git",
        "git@github.com:team/app.git",
    ],
)
def test_supported_urls_are_accepted(url: str) -> None:
    assert git.validate_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "ssh://-oProxyCommand=touch/tmp/x/repo",
        "git@host:-repo",
        "https://example.com/repo.git\n",
        "/srv/git/app.git",
        "",
    ],
)
def test_dangerous_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid):
        git.validate_url(url)


def test_credentials_are_hidden_in_messages() -> None:
    shown = git.redact_url("https://user:s3cret@git.example.com/app.git")
    assert shown == "https://***@git.example.com/app.git"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/repo.git",
        "http://[::ffff:169.254.169.254]/repo.git",
        "https://metadata.google.internal/repo.git",
        "git@169.254.169.254:repo.git",
        "http://2852039166/repo.git",
    ],
)
async def test_link_local_and_metadata_hosts_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as caught:
        await git.check_url_not_internal(url)
    assert "metadata" in caught.value.details[0].message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3000/team/app.git", "ssh://git@10.0.0.5/app.git", "git@[::1]:a.git"]
)
async def test_loopback_and_private_git_servers_are_allowed(url: str) -> None:
    await git.check_url_not_internal(url)


async def test_file_urls_need_allow_file(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        await git.check_url_not_internal(tmp_path.as_uri())
    assert "file:// repositories are not allowed" in caught.value.details[0].message


async def test_file_urls_pass_with_allow_file(tmp_path: Path) -> None:
    await git.check_url_not_internal(tmp_path.as_uri(), allow_file=True)
