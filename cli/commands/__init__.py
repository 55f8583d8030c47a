"""Subcommand modules; each defines `register(app)`."""
