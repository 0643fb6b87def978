"""Import an app from a repository: fetch, detect, create."""

from __future__ import annotations

from fastapi import APIRouter, status

from shipyard.api.deps import Admin, Ctx, DbSession
from shipyard.api.v1 import V1, views
from shipyard.api.v1 import schemas as w
from shipyard.api.v1.views import ERRORS
from shipyard.apps import importer
from shipyard.apps.schemas import AppSpec, RepositorySpec

router = APIRouter(prefix=f"{V1}/apps", tags=["apps"], responses=ERRORS)


def _spec(body: w.ImportAppRequest) -> AppSpec:
    fields: dict[str, object] = {"repository": RepositorySpec(**body.repository.model_dump())}
    if body.name is not None:
        fields["name"] = body.name
    if body.server_id is not None:
        fields["server_id"] = body.server_id
    if body.source is not None:
        fields.update(body.source.model_dump(exclude_unset=True))
    if body.runtime is not None:
        fields.update(body.runtime.model_dump(exclude_unset=True))
    if body.build_mode is not None:
        fields["build_mode"] = body.build_mode
    if body.dependency_profile is not None:
        fields["dependency_profile"] = body.dependency_profile.model_dump()
    return AppSpec(**fields)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=w.ImportAppResponse,
    response_model_exclude_unset=True,
    operation_id="importApp",
)
async def import_app(
    body: w.ImportAppRequest, principal: Admin, session: DbSession, ctx: Ctx
) -> w.ImportAppResponse:
    """Fetch a repository, check its manifest, detect its build profile and create the app."""
    spec = _spec(body)
    # End the transaction authentication opened: on SQLite it holds the write lock, which must
    # not be held while git fetches (the import takes a new one to create the app).
    await session.commit()
    imported = await importer.import_app(session, principal, spec, ctx.settings.resolved_data_dir)
    app = imported.app
    response = w.ImportAppResponse(
        app=views.app(app),
        detection=w.DetectionResult(**imported.detection.result()),
        next_action=w.NextAction(
            action_type="deploy", deploy_endpoint=f"{V1}/apps/{app.id}/deployments"
        ),
        commit_sha=imported.commit_sha,
        manifest=imported.manifest.model_dump() if imported.manifest else None,
    )
    if imported.detection.compose is not None:
        response.compose = w.ComposeSummary(**imported.detection.compose.model_dump())
    return response
