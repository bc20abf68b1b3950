"""The command lines agents owns: `amcp-agent` (agent.py) and its `amcp` subcommands, one
module each, registered through the `amcp.commands` entry-point group."""
