"""Database access: engine, sessions, metadata and migrations."""
