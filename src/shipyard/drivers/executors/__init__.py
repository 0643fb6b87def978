"""Step executors: run one CI or deploy step as a process (shell) or a container (docker)."""
