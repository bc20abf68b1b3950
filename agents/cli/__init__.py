"""The command lines agents owns: `amcp-agent` (agent.py) and its `amcp` subcommands, one
module each, registered through the `amcp.commands` entry-point group; session.py is the
connection the subcommands that ask a live agent share."""
