"""Apps: long-running deployable things and their source settings."""
