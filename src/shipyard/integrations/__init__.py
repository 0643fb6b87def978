"""Connections to outside services (GitHub): mappings stored per app, and their webhooks."""
