"""Signal processing shared by inverters and vocoder plugins, below them all: Numba STFT
framing and overlap-add (:mod:`.stft_kernels`), heap integration of phase derivatives
(:mod:`.heap`), phase integrators from bin offsets (:mod:`.phase_integration`: our
interpretation of seed 002 §3.2, and PGHI's heap), reassignment (:mod:`.reassignment`) and the
phase-gradient targets (:mod:`.phase_targets`)."""
