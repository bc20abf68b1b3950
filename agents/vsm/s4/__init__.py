"""S4, intelligence: the role and its analysis of tasks and traffic."""
