"""Incoming webhooks: signature checks and delivery de-duplication."""
