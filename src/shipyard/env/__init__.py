"""App environment variables, encrypted at rest."""
