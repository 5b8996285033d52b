"""MelNet (seed 000): time-delayed and frequency-delayed stacks, cached sampler."""
