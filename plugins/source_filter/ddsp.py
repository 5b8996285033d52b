"""The DDSP harmonic-plus-noise vocoder (Engel et al. 2020): a decoder reads the log-mel and
log-F0 per frame (its RNN-FC decoder of §4.1 / appendix B: MLP → GRU → MLP) and predicts an
overall amplitude, a distribution over ``K`` harmonics and the magnitude responses of a noise
filter; an additive harmonic oscillator (:mod:`.oscillator`) and filtered noise
(:mod:`.filtered_noise`) make the audio, optionally through a learned reverb (:mod:`.reverb`).

The paper conditions on F0 and loudness; here the conditioning is the mel (what MelNet gives),
with the F0 from labels in training and from the estimator at inversion. The harmonic part is
gated by the voicing (labels, or the estimator's probability), an addition: an F0 estimated from
a mel carries no meaning in unvoiced frames.
"""

from __future__ import annotations

import math

import torch

from .filtered_noise import filtered_noise, row_noise
from .oscillator import exp_sigmoid, frames_to_samples, harmonic_oscillator, nyquist_mask
from .reverb import LearnedReverb


def mlp(width_in: int, width: int, layers: int) -> torch.nn.Sequential:
    """DDSP's MLP: ``layers`` × (Linear → LayerNorm → leaky ReLU)."""
    parts: list[torch.nn.Module] = []
    for k in range(layers):
        parts += [torch.nn.Linear(width_in if k == 0 else width, width), torch.nn.LayerNorm(width), torch.nn.LeakyReLU(0.2)]
    return torch.nn.Sequential(*parts)


class DdspVocoder(torch.nn.Module):
    """``(log_mel (batch, frames, n_mels), f0 (batch, frames) Hz, voiced (batch, frames) in [0, 1],
    seeds (batch,))`` → ``audio (batch, frames · hop)``; row ``b``'s noise is drawn from ``seeds[b]``.

    Args:
        n_mels: mel channels of the input.
        sr: sample rate (Hz); hop: samples per frame.
        hidden: width of the MLPs and the GRU (DDSP: 512).
        mlp_layers: layers per MLP (DDSP: 3).
        harmonics: K (DDSP: 100).
        noise_bands: magnitude-response bands of the noise filter (DDSP: 65).
        reverb_taps: length of the learned reverb (samples; 0: none).

    Raises:
        ValueError: a size below 1 (names ``inverter.<key>``).
    """

    def __init__(self, n_mels: int, sr: int, hop: int, hidden: int = 512, mlp_layers: int = 3, harmonics: int = 100,
                 noise_bands: int = 65, reverb_taps: int = 0):
        super().__init__()
        for key, value in (("hidden", hidden), ("mlp_layers", mlp_layers), ("harmonics", harmonics), ("noise_bands", noise_bands - 1)):
            if value < 1:
                raise ValueError(f"inverter.{key}={value if key != 'noise_bands' else noise_bands}: too small")
        self.sr, self.hop, self.harmonics = int(sr), int(hop), int(harmonics)
        self.pre = mlp(n_mels + 1, hidden, mlp_layers)
        self.gru = torch.nn.GRU(hidden, hidden, batch_first=True)
        self.post = mlp(hidden + n_mels + 1, hidden, mlp_layers)
        self.out = torch.nn.Linear(hidden, 1 + harmonics + noise_bands)
        self.reverb = LearnedReverb(reverb_taps) if reverb_taps else None

    def controls(self, log_mel: torch.Tensor, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder's frame-rate outputs: ``(amplitude (batch, frames), harmonic distribution
        (batch, frames, K), summing to 1 over the harmonics below Nyquist, noise magnitudes
        (batch, frames, bands))``."""
        z = torch.cat([log_mel, (torch.log(f0) - math.log(200.0))[..., None]], dim=-1)  # log-F0 around 200 Hz
        h, _ = self.gru(self.pre(z))
        y = self.out(self.post(torch.cat([h, z], dim=-1)))
        amplitude = exp_sigmoid(y[..., 0])
        dist = exp_sigmoid(y[..., 1 : 1 + self.harmonics]) * nyquist_mask(f0, self.harmonics, self.sr)
        dist = dist / dist.sum(-1, keepdim=True).clamp(min=1e-7)
        noise_mag = exp_sigmoid(y[..., 1 + self.harmonics :] - 5.0)  # DDSP's initial bias −5: quiet noise at first
        return amplitude, dist, noise_mag

    def forward(self, log_mel: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        noise = row_noise(seeds, f0.shape[1] * self.hop, f0.device)
        amplitude, dist, noise_mag = self.controls(log_mel, f0)
        amps = frames_to_samples((amplitude * voiced)[..., None] * dist, self.hop)  # (batch, samples, K)
        harmonic = harmonic_oscillator(frames_to_samples(f0, self.hop), amps, self.sr)
        audio = harmonic + filtered_noise(noise_mag, noise, self.hop)
        return self.reverb(audio) if self.reverb is not None else audio
