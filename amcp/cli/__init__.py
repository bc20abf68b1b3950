"""The `amcp` command line."""
