"""Shipyard: a self-hosted application platform."""

__version__ = "0.1.0"
