"""Agents as child processes: starting one, supervising it, and the restart budget."""
