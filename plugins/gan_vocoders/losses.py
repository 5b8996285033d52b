"""The GAN vocoders' losses: least-squares GAN (Mao et al. 2017; HiFi-GAN eq. 1-2), hinge
(MelGAN §2.3, eq. 1-2), feature matching (HiFi-GAN eq. 4, MelGAN eq. 4), the mel L1 (HiFi-GAN
eq. 3) and Parallel WaveGAN's multi-resolution STFT loss (Yamamoto et al. 2020, §2.3, eq. 3-6).

A judgement is a list of ``(score (batch, n), features)``, one per sub-discriminator
(:mod:`.discriminators`); every adversarial loss sums over the sub-discriminators, as both
papers do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from melforge.core.spectral_distance import MRSTFT_FFT, MRSTFT_HOP, MRSTFT_WIN, multi_resolution_stft_loss

Judgement = Sequence[tuple[torch.Tensor, Sequence[torch.Tensor]]]


def lsgan_discriminator_loss(real: Judgement, fake: Judgement) -> torch.Tensor:
    """HiFi-GAN eq. 1: ``Σ_k E[(D_k(x) − 1)²] + E[D_k(G(s))²]``."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake))


def lsgan_generator_loss(fake: Judgement) -> torch.Tensor:
    """HiFi-GAN eq. 2: ``Σ_k E[(D_k(G(s)) − 1)²]``."""
    return sum(torch.mean((1 - f) ** 2) for f, _ in fake)


def hinge_discriminator_loss(real: Judgement, fake: Judgement) -> torch.Tensor:
    """MelGAN eq. 1: ``Σ_k E[max(0, 1 − D_k(x))] + E[max(0, 1 + D_k(G(s)))]``."""
    return sum(torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))


def hinge_generator_loss(fake: Judgement) -> torch.Tensor:
    """MelGAN eq. 2: ``Σ_k −E[D_k(G(s))]``."""
    return sum(-f.mean() for f, _ in fake)


#: ``{name: (discriminator loss, generator loss)}``.
ADVERSARIAL = {
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}


def feature_matching_loss(real: Judgement, fake: Judgement, *, last: bool = True) -> torch.Tensor:
    """Σ over sub-discriminators and layers of the mean absolute difference of the activations
    (HiFi-GAN eq. 4, whose 1/N_i is the mean; MelGAN eq. 4 leaves the score layer out:
    ``last=False``). The real features are constants (detached). MelGAN's released code also
    weights every layer by 4 / (layers + 1) and every scale by 1/3; this is the paper's equation."""
    total = 0.0
    for (_, fr), (_, ff) in zip(real, fake):
        layers = list(zip(fr, ff)) if last else list(zip(fr[:-1], ff[:-1]))
        total = total + sum(torch.mean(torch.abs(r.detach() - g)) for r, g in layers)
    return total


def mel_l1_loss(pred_log_mel: torch.Tensor, target_log_mel: torch.Tensor) -> torch.Tensor:
    """HiFi-GAN eq. 3: the mean absolute difference of two log-mel spectrograms
    ``(batch, frames, n_mels)`` (nats of mel magnitude)."""
    return torch.mean(torch.abs(pred_log_mel - target_log_mel))


class MultiResolutionStftLoss(torch.nn.Module):
    """Parallel WaveGAN's auxiliary loss: spectral convergence plus log-magnitude L1, averaged
    over the resolutions of :data:`MRSTFT_FFT` / :data:`MRSTFT_HOP` / :data:`MRSTFT_WIN` (Hann
    windows), by :func:`melforge.core.spectral_distance.multi_resolution_stft_loss` (auraloss),
    the same loss the benchmark's ``multi_resolution_stft_distance`` reports.

    Args:
        fft_sizes, hop_sizes, win_lengths: the resolutions (shorter audio than a window is
            reflect-padded by the STFT's centring; every window must be ≤ its FFT size).
    """

    def __init__(self, fft_sizes=MRSTFT_FFT, hop_sizes=MRSTFT_HOP, win_lengths=MRSTFT_WIN):
        super().__init__()
        self.loss = multi_resolution_stft_loss(fft_sizes, hop_sizes, win_lengths)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pred, target: (batch, samples)`` → the scalar loss (dimensionless)."""
        return self.loss(pred[:, None].float(), target[:, None].float())
