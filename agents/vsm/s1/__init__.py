"""S1, operations: the role that runs task steps, and its executors."""
