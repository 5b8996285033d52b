"""The run's mel analysis in torch, differentiable, for the mel L1 of generated audio
(HiFi-GAN eq. 3): the same centred Hann STFT (zero-padded, as ``librosa.stft``), the same
librosa filterbank and the same power floor as the ``log_mel`` representation, so the loss
compares the generated audio's mel with the input mel at the run's geometry."""

from __future__ import annotations

import numpy as np
import torch

from melforge.core.stft import StftParams


class MelGeometry:
    """What a mel representation fixes: the STFT, the filterbank and the power floor, read from
    the run's representation (``stft``, ``mel_basis``, ``floor``, as ``log_mel`` has them).

    Raises:
        ValueError: the representation has no mel filterbank (names it).
    """

    def __init__(self, representation):
        try:
            self.stft: StftParams = representation.stft
            self.mel_basis = np.asarray(representation.mel_basis, dtype=np.float32)  # (n_mels, bins)
            self.floor = float(representation.floor)
        except AttributeError as exc:
            raise ValueError(
                f"GAN vocoders train on a mel representation (stft, mel_basis, floor, e.g. log_mel); "
                f"{type(representation).__name__} has no {exc.name!r}"
            ) from None
        self.n_mels = self.mel_basis.shape[0]

    def describe(self) -> str:
        """``"sr 22050 Hz, n_fft 1024, hop 256, window 1024, 80 mels"``."""
        s = self.stft
        return f"sr {s.sr} Hz, n_fft {s.n_fft}, hop {s.hop_length}, window {s.win_length}, {self.n_mels} mels"


class TorchLogMel(torch.nn.Module):
    """``audio (batch, samples)`` → natural-log mel power ``(batch, 1 + samples // hop, n_mels)``,
    equal to ``log_mel``'s :meth:`analyze` (to float32 rounding).

    Args:
        stft: the geometry.
        mel_basis: ``(n_mels, n_fft // 2 + 1)`` filterbank.
        floor: the power floor before the log.
    """

    def __init__(self, stft: StftParams, mel_basis: np.ndarray, floor: float):
        super().__init__()
        self.stft, self.floor = stft, float(floor)
        self.register_buffer("basis", torch.as_tensor(np.asarray(mel_basis, dtype=np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(stft.win_length), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        s = self.stft
        spec = torch.stft(audio.float(), s.n_fft, s.hop_length, s.win_length, self.window, center=True,
                          pad_mode="constant", return_complex=True)  # (batch, bins, frames)
        power = spec.real**2 + spec.imag**2
        mel = torch.einsum("mk,bkt->btm", self.basis, power)
        return torch.log(torch.clamp(mel, min=self.floor))
