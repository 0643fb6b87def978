"""Pure functions from core rows to RustCI's documented response shapes."""

from __future__ import annotations

from typing import Any

from shipyard.clock import ms_to_datetime
from shipyard.engine.states import CANCELLED, FAILED, QUEUED, RUNNING, SKIPPED, SUCCEEDED
from shipyard.models import LogLine, Pipeline, Run, RunStep, User, Workspace
from shipyard.pagination import Page

# Core run states, as RustCI names them.
STATUS = {
    QUEUED: "queued",
    RUNNING: "running",
    SUCCEEDED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
    SKIPPED: "skipped",
}


def iso(ms: int | None) -> str | None:
    return (
        None
        if ms is None
        else ms_to_datetime(ms).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def user(row: User) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username or row.email.split("@")[0],
        "email": row.email,
        "github_id": row.github_id,
        "roles": ["admin", "user"] if row.role == "admin" else ["user"],
        "created_at": iso(row.created_at_ms),
        "updated_at": iso(row.updated_at_ms),
        "last_login": iso(row.last_login_at_ms),
    }


def workspace(row: Workspace) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "owner_id": row.owner_id,
        "repository_url": row.repository_url,
        "branch": row.branch,
        "status": row.status,
        "webhook_secret_set": row.webhook_secret_ciphertext is not None,
        "created_at": iso(row.created_at_ms),
        "updated_at": iso(row.updated_at_ms),
    }


def pagination(page: Page[Any]) -> dict[str, int]:
    return {
        "page": page.page,
        "limit": page.limit,
        "total": page.total,
        "total_pages": page.total_pages,
    }


def pipeline(row: Pipeline) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "workspace_id": row.workspace_id,
        "stages": row.stages,
        "variables": row.variables,
        "triggers": row.triggers,
        "source": row.source,
        "created_at": iso(row.created_at_ms),
        "updated_at": iso(row.updated_at_ms),
    }


def execution(row: Run) -> dict[str, Any]:
    return {
        "id": row.id,
        "pipeline_id": row.pipeline_id,
        "status": STATUS[row.status],
        "trigger": row.trigger,
        "branch": row.branch,
        "commit_sha": row.commit_sha,
        "variables": row.variables or {},
        "error": row.error,
        "created_at": iso(row.created_at_ms),
        "started_at": iso(row.started_at_ms),
        "completed_at": iso(row.finished_at_ms),
    }


def _stage_status(steps: list[RunStep]) -> str:
    states = {s.status for s in steps}
    for status in (RUNNING, FAILED, CANCELLED):
        if status in states:
            return STATUS[status]
    if states == {SKIPPED}:
        return "skipped"
    if states <= {SUCCEEDED, SKIPPED} and SUCCEEDED in states:
        return "completed"
    return "queued" if states == {QUEUED} else "running"


def execution_detail(row: Run, steps: list[RunStep]) -> dict[str, Any]:
    stages: dict[str, list[RunStep]] = {}
    for step in steps:
        stages.setdefault(step.stage or "", []).append(step)
    out = execution(row)
    out["stages"] = [
        {
            "name": name,
            "status": _stage_status(group),
            "started_at": iso(
                min((s.started_at_ms for s in group if s.started_at_ms), default=None)
            ),
            "completed_at": iso(max((s.finished_at_ms or 0 for s in group), default=0) or None)
            if all(s.finished_at_ms for s in group)
            else None,
            "steps": [
                {
                    "name": s.name,
                    "status": STATUS[s.status],
                    "started_at": iso(s.started_at_ms),
                    "completed_at": iso(s.finished_at_ms),
                    "exit_code": s.exit_code,
                    "message": s.message,
                    "logs_url": f"/api/executions/{row.id}/logs/{name}/{s.name}",
                }
                for s in group
            ],
        }
        for name, group in stages.items()
    ]
    return out


def log_line(row: LogLine) -> dict[str, Any]:
    return {"timestamp": iso(row.at_ms), "level": row.level, "message": row.line, "seq": row.seq}
