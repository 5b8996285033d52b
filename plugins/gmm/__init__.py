"""Gaussian mixture likelihood head (seed 000 eq. 2-5)."""
