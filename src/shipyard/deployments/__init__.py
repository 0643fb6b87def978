"""Deployments: runs that make a release of an app live (build, release, start, health, switch)."""
