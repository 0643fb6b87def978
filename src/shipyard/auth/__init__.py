"""Authentication: passwords, login sessions, bearer tokens, password reset, bootstrap."""
