"""Runs: pipeline executions (and, later, deployments) with their steps and logs."""
