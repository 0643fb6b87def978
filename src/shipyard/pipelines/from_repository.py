"""Pipelines kept in the workspace's repository: `.shipyard/pipelines/*.yaml` files and the
`pipelines` key of `shipyard.yaml`. Read at a commit (through the git mirror) and stored, so a
push that changes them changes what runs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.drivers import git
from shipyard.drivers.manifest import load_manifest, load_yaml, read_tree_file, yaml_error_message
from shipyard.errors import FieldError, Invalid
from shipyard.models import Pipeline, Workspace
from shipyard.pipelines import service as pipelines_service

PIPELINE_DIR = ".shipyard/pipelines"
MAX_FILE_BYTES = 256 * 1024


def read_definitions(tree: Path) -> list[dict[str, Any]]:
    """The pipeline definitions in a checkout (file name = default pipeline name)."""
    definitions: list[dict[str, Any]] = []
    manifest = load_manifest(tree)
    if manifest is not None:
        definitions += [
            p.model_dump() if hasattr(p, "model_dump") else dict(p) for p in manifest.pipelines
        ]
    folder = tree / PIPELINE_DIR
    if folder.is_dir():
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            relative = f"{PIPELINE_DIR}/{path.name}"
            text = read_tree_file(tree, relative, MAX_FILE_BYTES)
            try:
                data = load_yaml(text or "")
            except yaml.YAMLError as exc:
                raise Invalid(
                    f"{relative} is not valid YAML", [FieldError(relative, yaml_error_message(exc))]
                ) from exc
            if not isinstance(data, dict):
                raise Invalid(
                    f"{relative} must be a mapping", [FieldError(relative, "must be a mapping")]
                )
            data.setdefault("name", path.stem)
            definitions.append(data)
    return definitions


async def refresh(
    session: AsyncSession, workspace: Workspace, data_dir: Path, ref: str | None = None
) -> list[Pipeline]:
    """Fetch the workspace's repository, read its pipelines at ``ref`` (default: its branch),
    and store them."""
    cache = data_dir / "git" / workspace.id
    mirror = await git.mirror(workspace.repository_url, cache)
    sha = await git.resolve_cached(mirror, ref or workspace.branch)
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-pipelines-"))
    try:
        tree = await git.checkout(mirror, sha, scratch / "tree")
        definitions = read_definitions(tree)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return await pipelines_service.upsert_from_repository(session, workspace, definitions)
