"""Config group ``backbone``: ``causal_conv``."""
