"""DDSP's filtered noise (Engel et al. 2020, §3.2 and appendix B): white noise through a
time-varying FIR filter whose frequency response the network predicts per frame. The impulse
response of each frame comes by frequency sampling: the inverse real FFT of a zero-phase
magnitude response, shifted to be causal and Hann-windowed; each hop of noise is convolved with
its frame's impulse response by FFT and the results overlap-added."""

from __future__ import annotations

import torch


def row_noise(seeds: torch.Tensor, samples: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform noise in ``[-1, 1)``, one row per seed: ``(len(seeds), samples)`` float32, each
    row a pure function of its seed (so a batch and its rows one at a time agree, and a resumed
    run draws the noise of an uninterrupted one)."""
    rows = [torch.rand(samples, generator=torch.Generator().manual_seed(int(s))) for s in seeds.tolist()]
    return (2 * torch.stack(rows) - 1).to(device)


def frequency_sampling_fir(magnitudes: torch.Tensor) -> torch.Tensor:
    """Impulse responses from magnitude responses (DDSP's ``frequency_impulse_response``).

    Args:
        magnitudes: ``(…, bands)`` linear gains at ``bands`` frequencies evenly spaced from 0 to
            Nyquist.

    Returns:
        ``(…, 2 · (bands − 1))`` windowed, linear-phase impulse responses whose delay is
        ``bands − 1`` samples (half their length).
    """
    magnitudes = magnitudes.float()
    ir = torch.fft.irfft(torch.complex(magnitudes, torch.zeros_like(magnitudes)), dim=-1)  # zero phase
    size = ir.shape[-1]
    ir = torch.roll(ir, size // 2, dims=-1)  # causal: the zero-phase peak moves to the centre
    return ir * torch.hann_window(size, periodic=True, device=ir.device, dtype=ir.dtype)


def framewise_convolve(audio: torch.Tensor, ir: torch.Tensor, hop: int) -> torch.Tensor:
    """Convolve hop ``t`` of ``audio`` with ``ir[:, t]`` and overlap-add (DDSP's ``fft_convolve``),
    compensating the impulse responses' delay of half their length.

    Args:
        audio: ``(batch, frames · hop)``.
        ir: ``(batch, frames, taps)`` impulse responses, ``taps`` even, delay ``taps / 2``.
        hop: samples per frame.

    Returns:
        ``(batch, frames · hop)`` float32.
    """
    audio, ir = audio.float(), ir.float()  # FFTs in float32, also under a bf16 autocast
    batch, frames, taps = ir.shape
    n_fft = 1 << (hop + taps - 1 - 1).bit_length()
    chunks = audio.reshape(batch, frames, hop)
    out = torch.fft.irfft(torch.fft.rfft(chunks, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., : hop + taps - 1]
    total = torch.nn.functional.fold(out.transpose(1, 2), (1, (frames - 1) * hop + hop + taps - 1), (1, hop + taps - 1),
                                     stride=(1, hop))  # overlap-add
    delay = taps // 2
    return total.reshape(batch, -1)[:, delay : delay + frames * hop]


def filtered_noise(magnitudes: torch.Tensor, noise: torch.Tensor, hop: int) -> torch.Tensor:
    """White ``noise (batch, frames · hop)`` shaped by ``magnitudes (batch, frames, bands)``,
    frame ``t``'s response on the hop ``[t · hop, (t + 1) · hop)``."""
    return framewise_convolve(noise, frequency_sampling_fir(magnitudes), hop)
