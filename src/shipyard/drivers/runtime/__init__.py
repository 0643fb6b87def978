"""Runtimes: build releases and run app instances, as local processes or Docker containers."""
