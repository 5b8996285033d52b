"""Config group ``experiment``: ``example_tiny``."""
