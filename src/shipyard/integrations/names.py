"""Checks for the names GitHub and git accept: owners, repositories and branches."""

from __future__ import annotations

import re

from shipyard.errors import invalid_field

# GitHub user and organisation names: letters, digits and single hyphens, up to 39 characters.
_OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# What `git check-ref-format --branch` refuses, as one pattern of forbidden pieces.
_BAD_BRANCH_RE = re.compile(
    r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$|\.lock/|/\."
)


def check_owner(name: str, *, field: str = "owner") -> str:
    if not _OWNER_RE.match(name):
        raise invalid_field(
            field, "a GitHub owner is 1-39 letters, digits or single hyphens (like octo-org)"
        )
    return name


def check_repo(name: str, *, field: str = "repo") -> str:
    if not _REPO_RE.match(name) or name in (".", "..") or name.lower().endswith(".git"):
        raise invalid_field(
            field,
            "a GitHub repository name is 1-100 letters, digits, '.', '-' or '_', without .git",
        )
    return name


def check_branch(name: str, *, field: str = "branch") -> str:
    if not name or len(name) > 255 or name == "@" or _BAD_BRANCH_RE.search(name):
        raise invalid_field(
            field,
            "not a valid branch name: no spaces, '..', '@{', any of ~^:?*[\\ , and no leading "
            "'-', '/' or '.'",
        )
    return name
