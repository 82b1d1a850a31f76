"""Subcommands of the instructor-search CLI (each module has ``register(subparsers)``)."""
