"""API tokens: personal access tokens and service tokens with scopes."""
