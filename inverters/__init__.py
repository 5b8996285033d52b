"""Spectrogram inverters (Griffin-Lim family, gradient-based, PGHI), Numba-accelerated."""
