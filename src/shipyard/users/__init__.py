"""Users: people with an argon2id password and a role."""
