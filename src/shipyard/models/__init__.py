"""ORM classes, one module per aggregate. Importing this package registers every table."""

from shipyard.models.apps import App, AppEnvVar, Domain
from shipyard.models.audit import AuditEvent
from shipyard.models.pipelines import Pipeline, Workspace, WorkspaceSecret
from shipyard.models.releases import GithubIntegration, Release
from shipyard.models.runs import Job, LogLine, Run, RunEvent, RunStep, WebhookDelivery
from shipyard.models.servers import Server
from shipyard.models.tokens import ApiToken
from shipyard.models.users import LoginSession, PasswordReset, User

__all__ = [
    "ApiToken",
    "App",
    "AppEnvVar",
    "AuditEvent",
    "Domain",
    "GithubIntegration",
    "Job",
    "LogLine",
    "LoginSession",
    "PasswordReset",
    "Pipeline",
    "Release",
    "Run",
    "RunEvent",
    "RunStep",
    "Server",
    "User",
    "WebhookDelivery",
    "Workspace",
    "WorkspaceSecret",
]
