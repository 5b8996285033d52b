"""The phase-gradient vocoder of seed 002 (Di Giorgi, Levy & Sharp): a 1-D CNN maps a mel
spectrogram to the magnitude and the phase gradient (as bin offsets, eq. 6), plus a learned λ
channel where the paper computes λ with eq. 12 from the predicted offsets; phase integration
(our interpretation of §3.2) and the inverse STFT turn them into audio. The harmonic prior
(:mod:`.harmonic_fit`) and the partial refinement (:mod:`.partial_refinement`) are melforge
additions, not in seed 002, and off by default."""
