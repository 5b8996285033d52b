"""DDSP's multi-scale spectral loss (Engel et al. 2020, §4.2.1): for FFT sizes 2048, 1024, 512,
256, 128 and 64 with 75 % overlap, the L1 distance of the STFT magnitudes plus that of their
logarithms, summed over the scales."""

from __future__ import annotations

import torch

from melforge.plugins.gan_vocoders.losses import MultiResolutionStftLoss

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


#: NSF's spectral amplitude distance (Wang et al. 2019, §III-C): (frame length, frame shift,
#: FFT size) in samples at 16 kHz.
NSF_RESOLUTIONS = ((320, 80, 512), (80, 40, 128), (1920, 640, 2048))


class NsfSpectralLoss(torch.nn.Module):
    """NSF's training criterion: for each resolution, ``½ Σ (log(|Ŷ|² + η) − log(|Y|² + η))²``
    averaged over bins and frames (the paper sums; the mean keeps the scale independent of
    the crop), summed over the resolutions; Hann windows, η = 1e-5.

    Args:
        resolutions: ``(window, hop, n_fft)`` triples.
        eta: the floor η added to the power.
    """

    def __init__(self, resolutions=NSF_RESOLUTIONS, eta: float = 1e-5):
        super().__init__()
        self.resolutions, self.eta = tuple(tuple(int(v) for v in r) for r in resolutions), float(eta)
        for win, _, _ in self.resolutions:
            self.register_buffer(f"window_{win}", torch.hann_window(win), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pred, target: (batch, samples)`` → the scalar loss."""
        total = pred.new_zeros((), dtype=torch.float32)
        for win, hop, n_fft in self.resolutions:
            w = getattr(self, f"window_{win}")
            p, t = (torch.stft(x.float(), n_fft, hop, win, w, center=True, return_complex=True).abs() ** 2 for x in (pred, target))
            total = total + 0.5 * torch.mean((torch.log(p + self.eta) - torch.log(t + self.eta)) ** 2)
        return total


#: ``{name: loss class}`` selectable as ``inverter.spectral_loss`` (``mrstft``: Parallel WaveGAN's
#: multi-resolution STFT loss, auraloss, as the GAN vocoders use it).
SPECTRAL_LOSSES = {"ddsp": MultiScaleSpectralLoss, "nsf": NsfSpectralLoss, "mrstft": MultiResolutionStftLoss}
