"""Signal processing shared by inverters and vocoder plugins, below them all: Numba STFT
framing and overlap-add (:mod:`.stft_kernels`), heap integration of phase derivatives
(:mod:`.heap`), seed 002's phase integrators (:mod:`.phase_integration`), reassignment
(:mod:`.reassignment`) and the phase-gradient targets (:mod:`.phase_targets`)."""
