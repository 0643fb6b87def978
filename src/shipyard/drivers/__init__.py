"""The only code that touches the outside world; each driver sits behind a Protocol."""
