"""Hostnames routed to apps."""
