"""Encryption of secrets at rest and redaction of secrets from text."""
