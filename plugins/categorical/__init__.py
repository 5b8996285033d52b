"""Categorical likelihood head over a uniform grid of levels (WaveNet's softmax output,
van den Oord et al. 2016 §2.2; seed 000 Appendix A.2)."""
