"""The Run/Step engine: a job queue with leases, workers, state machines, pipeline scheduling."""
