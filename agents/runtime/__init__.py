"""The runtime every agent shares, whatever its role: the agent and its config, its tools
and extensions and the handle they see it through, serving calls, lifecycle, liveness,
membership, discovery, subjects, client, audit, metrics, errors. It knows no role by name:
the VSM roles plug in from agents.vsm."""
