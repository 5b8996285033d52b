"""What every trained mel vocoder shares (the phase-gradient vocoder, the GAN and source-filter
vocoders): its checkpoint is checked for what its run trained, it inverts only mels of the
geometry it was trained on and names both geometries otherwise, and a linear magnitude reaches
it through its own filterbank (``|X|² Bᵀ``), as a sampled mel would."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .inverter import TrainableInverter, signal_length
from .stft import StftParams
from .validation import check_magnitude


def describe_geometry(stft: StftParams, n_mels: int) -> str:
    """``"sr 22050 Hz, n_fft 1024, hop 256, window 1024, 80 mels"``."""
    return f"sr {stft.sr} Hz, n_fft {stft.n_fft}, hop {stft.hop_length}, window {stft.win_length}, {n_mels} mels"


def check_vocoder_checkpoint(
    path: str | Path, state: Mapping[str, Any], accepts: Callable[[Mapping[str, Any]], bool], kind: str, hint: str,
) -> None:
    """Refuse a checkpoint (``state``, loaded from ``path``) whose run did not train this kind of
    vocoder: ``accepts(config)`` must hold and the checkpoint must carry a mel filterbank.

    Raises:
        ValueError: names ``inverter.checkpoint``, what its run trained, and ``hint`` (how to train one).
    """
    cfg = state["config"]
    if accepts(cfg) and "mel_basis" in state:
        return
    if cfg.get("trains") == "inverter":
        what = f"inverter {(cfg.get('inverter') or {}).get('name')}"
    else:
        what = f"a {(cfg.get('backbone') or {}).get('name')} model"
    raise ValueError(f"inverter.checkpoint={str(path)!r}: not a {kind} checkpoint (its run trained {what}); train one with {hint}")


class TrainedMel(Protocol):
    """A loaded vocoder's geometry: ``stft``, ``mel_basis: (n_mels, bins)``, ``representation``
    (the analysis config it was trained on) and ``source`` (its checkpoint's path)."""

    stft: StftParams
    mel_basis: np.ndarray
    representation: dict
    source: str


class TrainedMelVocoder(TrainableInverter):
    """A trainable inverter whose trained network turns mels of one geometry into audio.

    Subclasses keep the loaded network in :attr:`trained` (``None`` before training) and say in
    :meth:`_require` how to get one; they implement :meth:`_invert_mel`.
    """

    trained: TrainedMel | None

    @property
    @abstractmethod
    def vocoder_name(self) -> str:
        """How errors name this vocoder (``pg_vocoder``, ``hifigan``)."""

    @abstractmethod
    def _require(self) -> TrainedMel:
        """:attr:`trained`, or a ``ValueError`` saying how to train or load one."""

    def representation_config(self) -> dict | None:
        """The checkpoint's representation (``None`` before training)."""
        return dict(self.trained.representation) if self.trained is not None else None

    def check_geometry(self, mel_basis: np.ndarray | None, stft: StftParams) -> None:
        """Raise unless ``stft`` (and the filterbank ``mel_basis (n_mels, bins)``, when given) are
        the checkpoint's.

        Raises:
            ValueError: names both geometries (and the checkpoint).
        """
        t = self._require()
        n_mels = mel_basis.shape[0] if mel_basis is not None else t.mel_basis.shape[0]
        same = stft == t.stft and (
            mel_basis is None
            or (mel_basis.shape == t.mel_basis.shape and np.allclose(mel_basis, t.mel_basis, rtol=1e-4, atol=1e-7))
        )
        if not same:
            other = "" if mel_basis is None or mel_basis.shape != t.mel_basis.shape else " (another mel filterbank: fmin/fmax differ)"
            raise ValueError(
                f"{self.vocoder_name}: the checkpoint {t.source} was trained on mels of "
                f"{describe_geometry(t.stft, t.mel_basis.shape[0])}, but these have "
                f"{describe_geometry(stft, n_mels)}{other}; use a vocoder trained on this representation"
            )

    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert a linear magnitude ``(frames, n_fft // 2 + 1)`` via its mel (``|X|² Bᵀ``): the
        network sees only the mel, as after sampling.

        Raises:
            ValueError: another geometry than the checkpoint's, or a bad magnitude / length.
        """
        self.check_geometry(None, stft)
        magnitude = check_magnitude(magnitude, stft)
        return self._invert(magnitude, stft, signal_length(stft, magnitude.shape[0], length))

    def invert_mel(self, mel_power, mel_basis, stft, *, length=None) -> np.ndarray:
        """Check the geometry against the checkpoint's, then :meth:`Inverter.invert_mel`.

        Raises:
            ValueError: another geometry (names both); see :meth:`Inverter.invert_mel`.
        """
        self.check_geometry(np.asarray(mel_basis), stft)
        return super().invert_mel(mel_power, mel_basis, stft, length=length)

    def _invert(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        t = self._require()
        mel_power = magnitude**2 @ t.mel_basis.T.astype(np.float64)  # (frames, n_mels)
        return self._invert_mel(mel_power, t.mel_basis, stft, length)
