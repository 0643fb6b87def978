"""Audit trail of state-changing requests."""
