"""The phase-gradient vocoder of seed 002 (Di Giorgi, Levy & Sharp): a 1-D CNN maps a mel
spectrogram to the magnitude and the phase gradient (as bin offsets, eq. 6) and the bin
classification λ (eq. 12); phase integration and the inverse STFT turn them into audio."""
