"""WaveNet (van den Oord et al. 2016), the waveform baseline of seed 000 (Appendix A.2, Table 3):
dilated causal convolutions with gated units over μ-law samples, the incremental-state protocol
with per-layer queues (Fast WaveNet, Paine et al. 2016) and a compiled Numba sampler."""
