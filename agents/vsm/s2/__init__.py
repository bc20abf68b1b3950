"""S2, coordination: the role and the arbiter that damps oscillation between S1s."""
