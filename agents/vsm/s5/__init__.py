"""S5, policy: the role, its rules, and the quorum vote on critical actions."""
