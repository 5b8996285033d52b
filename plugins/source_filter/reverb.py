"""DDSP's learned reverb (Engel et al. 2020, §3.3, appendix B): one trainable impulse response,
applied by FFT convolution to the dry signal, which is added back (the response's first tap is
held at 0, so the dry path is exactly the input)."""

from __future__ import annotations

import torch


class LearnedReverb(torch.nn.Module):
    """``audio (batch, samples)`` → ``audio + audio ∗ ir``, cut to ``samples`` (causal).

    Args:
        taps: length of the impulse response (samples; DDSP: 1 s at 16 kHz, ``16000``).

    Raises:
        ValueError: ``taps < 2``.
    """

    def __init__(self, taps: int):
        super().__init__()
        if taps < 2:
            raise ValueError(f"inverter.reverb_taps={taps}: expected at least 2 samples")
        self.ir = torch.nn.Parameter(torch.randn(taps) * 1e-4)  # starts nearly dry

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        audio = audio.float()
        ir = torch.cat([self.ir.new_zeros(1), self.ir[1:]])
        n = audio.shape[-1] + ir.shape[-1] - 1
        n_fft = 1 << (n - 1).bit_length()
        wet = torch.fft.irfft(torch.fft.rfft(audio, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., : audio.shape[-1]]
        return audio + wet
