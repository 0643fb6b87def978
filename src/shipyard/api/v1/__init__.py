"""The canonical HTTP API under /api/v1 (the Rustploy wire contract)."""

V1 = "/api/v1"
