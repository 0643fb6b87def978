"""RustCI: workspaces, pipelines, executions, step logs, webhook and WebSocket under /v1."""
