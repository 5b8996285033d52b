"""Base class of inverters: linear magnitude (or mel power) spectrogram → waveform.

An inverter that refines or starts from another one receives it as a constructor argument
(``GriffinLim(initializer=PGHI())``, ``GradientInversion(GriffinLim(n_iter=50))``) and calls
its composition hooks — :meth:`Inverter._invert`, :meth:`Inverter._invert_mel`,
:meth:`Inverter._initial_phase` — with input it has validated already, so an array is checked
once, at the public entry point (:meth:`Inverter.invert`, :meth:`Inverter.invert_mel`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .mel_inversion import check_mel, nnls_magnitude
from .stft import StftParams


def signal_length(stft: StftParams, n_frames: int, length: int | None) -> int:
    """The signal length in samples that ``n_frames`` centred frames stand for.

    Args:
        stft: analysis geometry.
        n_frames: frames of the spectrogram.
        length: requested length in samples, or ``None`` for ``(n_frames - 1) * hop_length``.

    Raises:
        ValueError: ``length`` is negative or would give another number of frames
            (``1 + length // hop_length != n_frames``), e.g. a spectrogram made with another hop.
    """
    if length is None:
        return stft.samples_for(n_frames)
    length = int(length)
    if length < 0 or stft.frames_for(length) != n_frames:
        lo, hi = stft.samples_for(n_frames), n_frames * stft.hop_length - 1
        raise ValueError(
            f"length: {length} samples give {stft.frames_for(max(length, 0))} frames at hop_length "
            f"{stft.hop_length}, but the spectrogram has {n_frames} frames (expected a length in "
            f"[{lo}, {hi}]); was it computed with another hop_length?"
        )
    return length


class Inverter(ABC):
    """Recovers a waveform whose STFT magnitude approximates a target.

    Public entry points (:meth:`invert`, :meth:`invert_mel`) validate their input —
    :func:`melforge.core.validation.check_magnitude`, :func:`melforge.core.mel_inversion.check_mel`,
    :func:`signal_length` — and never return non-finite samples. The composition hooks
    (``_invert``, ``_invert_mel``, ``_initial_phase``) take input that is already valid; an
    inverter composed of others calls them on its parts. A plugin need only implement
    :meth:`invert`: the hooks' defaults go through it.
    """

    @abstractmethod
    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert a magnitude spectrogram.

        Args:
            magnitude: ``(frames, n_fft // 2 + 1)`` non-negative linear STFT magnitude.
            stft: the analysis geometry the magnitude was computed with.
            length: output length in samples (default ``(frames - 1) * hop_length``); must give
                ``frames`` frames (``1 + length // hop_length``).

        Returns:
            ``(samples,)`` float32 waveform at ``stft.sr`` Hz.

        Raises:
            ValueError: a magnitude that is not 2-D, has the wrong number of bins, is negative
                or not finite; a ``length`` that does not fit the frame count.
        """

    def invert_mel(
        self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, *, length: int | None = None
    ) -> np.ndarray:
        """Invert a mel power spectrogram ``M ≈ |X|² Bᵀ``: validates, then :meth:`_invert_mel`.

        By default the mel power is mapped to a linear magnitude by non-negative least squares
        against the filterbank (:func:`melforge.core.mel_inversion.nnls_magnitude`) and
        inverted with :meth:`_invert`; inverters that fit the mel target directly override
        :meth:`_invert_mel` (``GriffinLim``, ``GradientInversion``).

        Args:
            mel_power: ``(frames, n_mels)`` non-negative mel power ``M``.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` non-negative filterbank ``B``.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``).

        Returns:
            ``(samples,)`` float32 waveform at ``stft.sr`` Hz.

        Raises:
            ValueError: see :func:`melforge.core.mel_inversion.check_mel` (wrong shapes,
                negative or non-finite values) and :func:`signal_length`.
        """
        mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
        return self._invert_mel(mel_power, mel_basis, stft, signal_length(stft, mel_power.shape[0], length))

    # --- what the inverter accepts ------------------------------------------------------------

    #: The inputs the inverter takes: ``"magnitude"`` (:meth:`invert`) and ``"mel_power"``
    #: (:meth:`invert_mel`; NNLS to a magnitude by default). :meth:`accepts` checks a
    #: representation's ``inverter_input`` against them.
    inputs: frozenset[str] = frozenset({"magnitude", "mel_power"})

    def representation_config(self) -> dict | None:
        """The representation config (``{"name": ..., <its keys>}``) this inverter's input must be
        analysed with — a trained inverter's, from its checkpoint — or ``None`` (the default):
        any. ``melforge-invert`` analyses audio with it instead of its ``representation`` group.
        """
        return None

    def accepts(self, name: str, representation: "Representation") -> str | None:
        """Why this inverter cannot turn ``representation``'s features (registered as ``name``)
        into audio, or ``None`` when it can: a trained inverter takes exactly the analysis it
        was trained on (:meth:`representation_config`); a waveform representation needs no
        inverter and is accepted by every one."""
        given = representation.inverter_input
        if given is None:
            return None
        if given not in self.inputs:
            return f"takes {' or '.join(sorted(self.inputs))}, but {name} gives {given}"
        wanted = self.representation_config()
        if wanted is None:
            return None
        have = {"name": name, **representation.config()}
        if dict(wanted) != have:
            return (f"was trained on the representation {dict(wanted)}, but these features are {have}; "
                    "set the representation keys to match it")
        return None

    def trainable(self) -> "TrainableInverter | None":
        """This inverter as one that ``melforge-train`` can fit (``trains: inverter``), or
        ``None`` (the default): an inverter without parameters."""
        return None

    # --- composition hooks: input already validated ------------------------------------------

    def _invert(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """:meth:`invert` for a magnitude that has been validated.

        Args:
            magnitude: ``(frames, n_fft // 2 + 1)`` float64, as ``check_magnitude`` returns it.
            stft: the analysis geometry.
            length: output length in samples, fitting the frame count (:func:`signal_length`).

        Returns:
            ``(length,)`` float32 waveform.

        The default calls :meth:`invert` (which checks again); built-in inverters override it.
        """
        return self.invert(magnitude, stft, length=length)

    def _invert_mel(self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """:meth:`invert_mel` for arrays :func:`melforge.core.mel_inversion.check_mel` returned.

        Args:
            mel_power: ``(frames, n_mels)`` float64 mel power.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` float64 filterbank.
            stft: the analysis geometry.
            length: output length in samples, fitting the frame count.

        Returns:
            ``(length,)`` float32 waveform. The default inverts the NNLS magnitude.
        """
        return self._invert(nnls_magnitude(mel_power, mel_basis), stft, length)

    def _initial_phase(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """A phase for a validated ``magnitude (frames, n_fft // 2 + 1)``, for an inverter that
        starts from this one (``GriffinLim(initializer=...)``).

        Returns:
            ``(frames, n_fft // 2 + 1)`` float64 phase in radians, referred to the frame start
            (librosa's convention: ``magnitude · exp(i φ)`` feeds ``librosa.istft``). The
            default is the phase of the STFT of :meth:`_invert`'s waveform; PGHI returns its
            integrated phase, Griffin-Lim the phase of its final coefficients.
        """
        import librosa  # deferred: librosa loads numba and scipy on first use; start-up does not pay for it

        audio = self._invert(magnitude, stft, length)
        spec = librosa.stft(
            audio, n_fft=stft.n_fft, hop_length=stft.hop_length, win_length=stft.win_length, window="hann", center=True
        )  # (bins, frames)
        return np.ascontiguousarray(np.angle(spec).T, dtype=np.float64)


class TrainableInverter(Inverter):
    """An inverter with parameters (seed 002's phase-gradient vocoder, a GAN vocoder), fitted by
    ``melforge-train`` (``trains: inverter``) through the one training loop.
    """

    #: Config keys (of the ``inverter`` group) that change only how a trained inverter inverts —
    #: its checkpoint, integrator, thresholds, seeds — not what a training run fits: a run that
    #: trains this inverter resumes across changes to them. Empty by default (every key counts).
    inference_keys: tuple[str, ...] = ()

    def trainable(self) -> "TrainableInverter":
        return self

    @abstractmethod
    def learner(self, parts: "InverterTrainingParts") -> "Learner":
        """What ``melforge-train`` fits when a run trains this inverter: a
        :class:`~melforge.core.learner.Learner` over ``parts`` (the run's representation,
        dataset and config)."""


class InverterTrainingParts:
    """What a trainable inverter's learner is built from.

    Attributes:
        cfg: the run's resolved config (``data``, ``train``, ``optimizer``, ``inverter`` …).
        representation: the run's representation (the analysis the inverter learns to undo).
        dataset: the run's dataset (its clips at ``representation.sr``).
    """

    def __init__(self, cfg, representation, dataset):
        self.cfg, self.representation, self.dataset = cfg, representation, dataset
