"""CI workspaces: a repository and default branch that pipelines belong to."""
