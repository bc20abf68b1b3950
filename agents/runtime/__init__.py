"""The runtime every agent shares, whatever its role: the agent, its tools and extensions,
lifecycle, liveness, membership, discovery, subjects, client, audit, metrics, errors.
It knows no role by name: the VSM roles plug in from agents.vsm."""
