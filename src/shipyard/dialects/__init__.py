"""Thin dialects: each serves one specified system's API at its documented paths, translating
to and from the core services (they never reach repositories or drivers)."""
