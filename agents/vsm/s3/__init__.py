"""S3, control: the role, the task loop, allocation of steps and the audit checks."""
