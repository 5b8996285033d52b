"""Source-filter vocoders as trainable inverters (issue 18): a DDSP harmonic-plus-noise vocoder
(Engel et al. 2020) and hn-NSF (Wang et al. 2019), each with a small F0 / voicing estimator that
reads the mel (trained jointly on ``librosa.pyin`` labels), trained by one
:class:`.learner.SourceFilterLearner` on the one training loop."""
