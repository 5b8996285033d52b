"""DDSP's multi-scale spectral loss (Engel et al. 2020, §4.2.1): for FFT sizes 2048, 1024, 512,
256, 128 and 64 with 75 % overlap, the L1 distance of the STFT magnitudes plus that of their
logarithms, summed over the scales."""

from __future__ import annotations

import torch

#: DDSP's FFT sizes.
DDSP_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


class MultiScaleSpectralLoss(torch.nn.Module):
    """``Σ_i mean|S_i − Ŝ_i| + log_weight · mean|log(S_i + eps) − log(Ŝ_i + eps)|`` over the
    scales ``i`` (Hann windows, hop = size / 4).

    Args:
        fft_sizes: the scales (each a window and FFT size).
        log_weight: α of the log term (DDSP: 1).
        eps: added to the magnitudes before the log (DDSP: 1e-7).
    """

    def __init__(self, fft_sizes=DDSP_FFT_SIZES, log_weight: float = 1.0, eps: float = 1e-7):
        super().__init__()
        self.fft_sizes, self.log_weight, self.eps = tuple(int(n) for n in fft_sizes), float(log_weight), float(eps)
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def magnitude(self, audio: torch.Tensor, n_fft: int) -> torch.Tensor:
        """``|STFT|`` of ``audio (batch, samples)`` at size ``n_fft``: ``(batch, bins, frames)``."""
        return torch.stft(audio.float(), n_fft, n_fft // 4, n_fft, getattr(self, f"window_{n_fft}"), center=True,
                          return_complex=True).abs()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pred, target: (batch, samples)`` → the scalar loss."""
        total = pred.new_zeros((), dtype=torch.float32)
        for n in self.fft_sizes:
            s, t = self.magnitude(pred, n), self.magnitude(target, n)
            total = total + torch.mean(torch.abs(s - t))
            total = total + self.log_weight * torch.mean(torch.abs(torch.log(s + self.eps) - torch.log(t + self.eps)))
        return total
