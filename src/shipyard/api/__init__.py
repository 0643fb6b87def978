"""HTTP layer: the canonical API (/api/v1), shared middleware, errors and dependencies."""
