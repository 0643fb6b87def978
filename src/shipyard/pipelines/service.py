"""Rules for pipelines: validated definitions inside a workspace the caller owns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shipyard.auth.principal import Principal
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound
from shipyard.ids import is_uuid, new_id
from shipyard.models import Pipeline, Run, Workspace
from shipyard.pagination import Page, PageRequest, paginate
from shipyard.pipelines.definition import normalise_stages, validate_pipeline
from shipyard.workspaces import service as workspaces_service


async def create_pipeline(
    session: AsyncSession,
    principal: Principal,
    workspace_id: str,
    *,
    name: Any,
    stages: Any,
    variables: Any,
    triggers: Any,
    source: str = "api",
) -> Pipeline:
    workspace = await workspaces_service.get_workspace(session, principal, workspace_id)
    variables = {} if variables is None else variables
    triggers = ["manual"] if triggers is None else triggers
    validate_pipeline(name, stages, variables, triggers)
    now = now_ms()
    pipeline = Pipeline(
        id=new_id(),
        workspace_id=workspace.id,
        name=name,
        stages=normalise_stages(stages),
        variables={k: str(v) for k, v in variables.items()},
        triggers=list(dict.fromkeys(triggers)),
        source=source,
        created_at_ms=now,
        updated_at_ms=now,
    )
    try:
        async with session.begin_nested():
            session.add(pipeline)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the workspace already has a pipeline named {name!r}") from exc
    return pipeline


async def list_pipelines(
    session: AsyncSession, principal: Principal, workspace_id: str, request: PageRequest
) -> Page[Pipeline]:
    workspace = await workspaces_service.get_workspace(session, principal, workspace_id)
    query = select(Pipeline).where(Pipeline.workspace_id == workspace.id).order_by(Pipeline.id)
    return await paginate(session, query, request)


async def get_pipeline(
    session: AsyncSession, principal: Principal, pipeline_id: str
) -> tuple[Pipeline, Workspace]:
    pipeline = await session.get(Pipeline, pipeline_id) if is_uuid(pipeline_id) else None
    if pipeline is None:
        raise NotFound("pipeline not found")
    try:
        workspace = await workspaces_service.get_workspace(
            session, principal, pipeline.workspace_id
        )
    except NotFound:
        raise NotFound("pipeline not found") from None
    return pipeline, workspace


async def delete_pipeline(session: AsyncSession, principal: Principal, pipeline_id: str) -> None:
    pipeline, _ = await get_pipeline(session, principal, pipeline_id)
    await session.delete(pipeline)
    await session.flush()


async def execution_summary(session: AsyncSession, pipeline_id: str) -> tuple[int, Run | None]:
    count = await session.scalar(
        select(func.count()).select_from(Run).where(Run.pipeline_id == pipeline_id)
    )
    last = await session.scalar(
        select(Run)
        .where(Run.pipeline_id == pipeline_id)
        .order_by(Run.created_at_ms.desc(), Run.id.desc())
        .limit(1)
    )
    return int(count or 0), last


async def upsert_from_repository(
    session: AsyncSession, workspace: Workspace, definitions: list[dict[str, Any]]
) -> list[Pipeline]:
    """Pipelines read from the repository: new ones are created, earlier repository pipelines of
    the same name are replaced; pipelines made through the API are never overwritten."""
    result = []
    for definition in definitions:
        name = definition.get("name")
        variables = definition.get("variables") or {}
        triggers = definition.get("triggers") or ["manual"]
        validate_pipeline(name, definition.get("stages"), variables, triggers)
        existing = await session.scalar(
            select(Pipeline).where(Pipeline.workspace_id == workspace.id, Pipeline.name == name)
        )
        if existing is not None and existing.source != "repository":
            continue
        if existing is None:
            existing = Pipeline(
                id=new_id(),
                workspace_id=workspace.id,
                name=name,
                source="repository",
                created_at_ms=now_ms(),
            )
            session.add(existing)
        existing.stages = normalise_stages(definition["stages"])
        existing.variables = {k: str(v) for k, v in variables.items()}
        existing.triggers = list(dict.fromkeys(triggers))
        existing.updated_at_ms = now_ms()
        result.append(existing)
    await session.flush()
    return result
