"""Servers that run workloads; the machine Shipyard runs on is the built-in ``local`` server."""
