"""hn-NSF, the harmonic-plus-noise neural source-filter vocoder (Wang, Takaki & Yamagishi 2019,
"Neural source-filter waveform models for statistical parametric speech synthesis", §IV-C; the
hn-NSF of Wang & Yamagishi, SSW 2019, with its maximum voice frequency fixed, not trained).

- The **source** (:func:`sine_source`): sine waves at F0 and its harmonics, of amplitude α,
  plus Gaussian noise of deviation σ in voiced frames; noise alone, of deviation α / 3, in
  unvoiced ones (eq. 10 of the TASLP paper: ``α sin(·) + n`` voiced, ``α / (3σ) · n``
  unvoiced, ``n ~ N(0, σ²)``, α = 0.1, σ = 0.003), the harmonics merged by a trainable linear
  layer and tanh.
- The **filter**: a harmonic branch of ``blocks`` neural filter blocks on the source and a noise
  branch of one block on a noise source, each block dilated causal convolutions conditioned on
  the upsampled mel, added to its input (the simplified block, ``o = i + a``).
- The branches are mixed through a low-pass (harmonic) and a high-pass (noise) FIR filter whose
  cut-off follows the voicing: ``voiced_cutoff`` (5 kHz) in voiced frames, ``unvoiced_cutoff``
  (1 kHz) in unvoiced ones, as hn-NSF's fixed-MVF version.

The paper's condition module (a bi-LSTM and a convolution over frames, then upsampling) is here
a convolution over frames, upsampled linearly to the sample rate.
"""

from __future__ import annotations

import math

import torch

from .filtered_noise import framewise_convolve, frequency_sampling_fir
from .oscillator import frames_to_samples, phase_cycles

#: hn-NSF's source constants: sine amplitude α and voiced noise deviation σ.
ALPHA, SIGMA = 0.1, 0.003


def row_randoms(seeds: torch.Tensor, samples: int, sines: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What one forward pass draws, each row from its own seed: ``(source noise (batch, samples),
    branch noise (batch, samples)``, both standard normal, ``initial phases (batch, sines)`` in
    cycles, uniform)."""
    rows = []
    for s in seeds.tolist():
        g = torch.Generator().manual_seed(int(s))
        rows.append((torch.randn(samples, generator=g), torch.randn(samples, generator=g), torch.rand(sines, generator=g)))
    return tuple(torch.stack([r[k] for r in rows]).to(device) for k in range(3))


def sine_source(f0_samples: torch.Tensor, voiced_samples: torch.Tensor, sr: int, sines: int,
                noise: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
    """hn-NSF's excitation for F0 and its ``sines − 1`` harmonics.

    Args:
        f0_samples: ``(batch, samples)`` F0 (Hz).
        voiced_samples: ``(batch, samples)`` voicing in [0, 1] (1 voiced); fractions mix the
            voiced and unvoiced sources linearly.
        sr: sample rate (Hz).
        sines: the fundamental and its harmonics (``k · f0``, k = 1 … sines); those at or above
            Nyquist are silent.
        noise: ``(batch, samples)`` standard normal noise.
        phases: ``(batch, sines)`` initial phases (cycles).

    Returns:
        ``(batch, samples, sines)``: ``α sin(2π (k φ + φ₀)) + σ n`` where voiced,
        ``(α / 3) n`` where unvoiced.
    """
    k = torch.arange(1, sines + 1, device=f0_samples.device, dtype=torch.float64)
    cycles = torch.remainder(phase_cycles(f0_samples, sr)[..., None] * k + phases.double()[:, None], 1.0)
    below = (f0_samples[..., None].double() * k < sr / 2).float()
    sine = ALPHA * torch.sin(2 * math.pi * cycles.float()) * below
    v = voiced_samples[..., None]
    n = noise[..., None]
    return v * (sine + SIGMA * n) + (1 - v) * (ALPHA / 3) * n


class CausalConv(torch.nn.Conv1d):
    """A dilated convolution padded on the left only: output sample ``n`` sees inputs ``≤ n``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.nn.functional.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


class FilterBlock(torch.nn.Module):
    """One neural filter block: ``x (batch, samples)``, ``cond (batch, cond_channels, samples)``
    → ``x + a`` (the simplified NSF block).

    ``a`` comes from a 1→C projection, ``layers`` dilated causal convolutions (kernel 3,
    dilations 1, 2, 4, …), each gated ``tanh ⊙ sigmoid`` with the condition added and a residual
    connection, then two 1×1 layers (tanh) to one channel.
    """

    def __init__(self, channels: int, layers: int, cond_channels: int, kernel: int = 3):
        super().__init__()
        self.inp = torch.nn.Conv1d(1, channels, 1)
        self.convs = torch.nn.ModuleList(CausalConv(channels, 2 * channels, kernel, dilation=2**k) for k in range(layers))
        self.conds = torch.nn.ModuleList(torch.nn.Conv1d(cond_channels, 2 * channels, 1) for _ in range(layers))
        self.out = torch.nn.Sequential(torch.nn.Conv1d(channels, max(channels // 4, 1), 1), torch.nn.Tanh(),
                                       torch.nn.Conv1d(max(channels // 4, 1), 1, 1), torch.nn.Tanh())

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.inp(x[:, None])
        for conv, c in zip(self.convs, self.conds):
            a, b = (conv(h) + c(cond)).chunk(2, dim=1)
            h = h + torch.tanh(a) * torch.sigmoid(b)
        return x + self.out(h)[:, 0]


def voicing_filters(voiced: torch.Tensor, sr: int, bands: int, voiced_cutoff: float, unvoiced_cutoff: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """hn-NSF's mixing filters per frame: ``(low-pass, high-pass)`` impulse responses
    ``(batch, frames, 2 · (bands − 1))`` with the cut-off ``unvoiced_cutoff + voiced ·
    (voiced_cutoff − unvoiced_cutoff)`` Hz (``voiced (batch, frames)`` in [0, 1])."""
    freqs = torch.linspace(0, sr / 2, bands, device=voiced.device)
    cutoff = unvoiced_cutoff + voiced[..., None] * (voiced_cutoff - unvoiced_cutoff)
    low = (freqs < cutoff).float()
    return frequency_sampling_fir(low), frequency_sampling_fir(1 - low)


class NsfVocoder(torch.nn.Module):
    """``(log_mel (batch, frames, n_mels), f0 (batch, frames) Hz, voiced (batch, frames),
    seeds (batch,))`` → ``audio (batch, frames · hop)``.

    Args:
        n_mels: mel channels; sr: sample rate (Hz); hop: samples per frame.
        channels: width of the filter blocks (the paper: 64).
        blocks: filter blocks of the harmonic branch (the paper: 5; the noise branch has 1).
        layers: dilated convolutions per block (the paper: 10).
        sines: F0 and its harmonics in the source (the paper: 8).
        voiced_cutoff, unvoiced_cutoff: the mixing filters' cut-offs (Hz).
        bands: frequency samples of the mixing filters (their length is ``2 · (bands − 1)``).

    Raises:
        ValueError: a size below 1 or a cut-off outside (0, sr / 2) (names ``inverter.<key>``).
    """

    def __init__(self, n_mels: int, sr: int, hop: int, channels: int = 64, blocks: int = 5, layers: int = 10,
                 sines: int = 8, voiced_cutoff: float = 5000.0, unvoiced_cutoff: float = 1000.0, bands: int = 65):
        super().__init__()
        for key, value in (("channels", channels), ("blocks", blocks), ("layers", layers), ("sines", sines)):
            if value < 1:
                raise ValueError(f"inverter.{key}={value}: expected at least 1")
        for key, value in (("voiced_cutoff", voiced_cutoff), ("unvoiced_cutoff", unvoiced_cutoff)):
            if not 0 < value < sr / 2:
                raise ValueError(f"inverter.{key}={value}: expected a frequency in (0, {sr / 2}) Hz")
        self.sr, self.hop, self.sines, self.bands = int(sr), int(hop), int(sines), int(bands)
        self.cutoffs = (float(voiced_cutoff), float(unvoiced_cutoff))
        self.condition = torch.nn.Conv1d(n_mels + 1, channels, 3, padding=1)
        self.merge = torch.nn.Linear(sines, 1)
        self.harmonic = torch.nn.ModuleList(FilterBlock(channels, layers, channels) for _ in range(blocks))
        self.noise = FilterBlock(channels, layers, channels)

    def forward(self, log_mel: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        samples = f0.shape[1] * self.hop
        source_noise, branch_noise, phases = row_randoms(seeds, samples, self.sines, f0.device)
        f0_s, v_s = frames_to_samples(f0, self.hop), frames_to_samples(voiced, self.hop)
        z = torch.cat([log_mel, (torch.log(f0) * voiced)[..., None]], dim=-1).transpose(1, 2)
        cond = frames_to_samples(self.condition(z).transpose(1, 2), self.hop).transpose(1, 2)  # (batch, C, samples)
        h = torch.tanh(self.merge(sine_source(f0_s, v_s, self.sr, self.sines, source_noise, phases))[..., 0])
        for block in self.harmonic:
            h = block(h, cond)
        n = self.noise((ALPHA / 3) * branch_noise, cond)
        low, high = voicing_filters(voiced, self.sr, self.bands, *self.cutoffs)
        return framewise_convolve(h, low, self.hop) + framewise_convolve(n, high, self.hop)
