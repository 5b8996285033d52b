"""Periodicity RMSE, V/UV F1 and pitch RMSE of a vocoder's output against its reference, the CREPE
recipe of CARGAN (Morrison et al., ICLR 2022) as Vocos (Siuzdak 2023, Table 1) runs it.

The recipe reproduced is Vocos' ``metrics/periodicity.py`` (gemelo-ai/vocos, commit 416f24d,
"adapted from descriptinc/cargan"), on 16 kHz audio:

- CREPE ``full`` (:mod:`.crepe`) on unpadded 1024-sample frames every 160 samples (10 ms);
  ``1 + (samples − 1024) // 160`` frames;
- pitch range 50–550 Hz, torchcrepe's default Viterbi decoder (:mod:`.pitch_decoding`);
  periodicity = the salience of the decoded bin;
- silence: frames whose A-weighted loudness (:mod:`.loudness`, unpadded 1024-sample Hann frames,
  same hop) is below −60 dB get periodicity 0;
- voiced: periodicity ≥ 0.21 (Vocos' ``UNVOICED_THRESHOLD``; CARGAN thresholds with torchcrepe's
  hysteresis instead);
- periodicity RMSE over all frames; V/UV F1 of the voiced decisions, the reference as truth;
  pitch RMSE in cents over the frames voiced in both.

Where melforge deviates: torchcrepe's random ±20-cent dither of the decoded pitch is left out
(only the pitch RMSE sees it); F1 is ``2TP / (2TP + FP + FN)``, which is 0, not NaN, when no
frame is voiced in both (Vocos' precision/recall form is NaN then, and its evaluation scripts drop
such clips); NaN only when neither clip has a voiced frame; audio at another rate is resampled
with librosa (soxr) rather than torchaudio's sinc resampler; metrics are per clip (Vocos averages
the periodicity RMSE of the clips of a batch; CARGAN pools squared errors over a data set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_pair import at_rate, paired_audio
from .crepe import SAMPLE_RATE, WINDOW, crepe_salience
from .loudness import a_weighted_loudness
from .pitch_decoding import decode_pitch


@dataclass(frozen=True)
class PitchTracking:
    """How a pitch track is computed; the defaults are Vocos' recipe (see the module docstring).

    Attributes:
        hop: frame step in samples at 16 kHz.
        fmin, fmax: pitch range in Hz.
        capacity: CREPE model, ``"full"`` or ``"tiny"``.
        decoder: ``"viterbi"`` or ``"weighted_argmax"`` (:func:`.pitch_decoding.decode_pitch`).
        pad: ``False``: unpadded frames (Vocos); ``True``: frames centred on ``n · hop``.
        silence_db: frames with A-weighted loudness below this (dB) get periodicity 0.
        voiced_threshold: a frame is voiced when its periodicity is at least this.
    """

    hop: int = 160
    fmin: float = 50.0
    fmax: float = 550.0
    capacity: str = "full"
    decoder: str = "viterbi"
    pad: bool = False
    silence_db: float = -60.0
    voiced_threshold: float = 0.21


#: Vocos' recipe.
VOCOS = PitchTracking()


@dataclass(frozen=True)
class PitchTrack:
    """One clip's pitch track.

    Attributes:
        pitch_hz: ``(frames,)`` pitch in Hz, NaN in unvoiced frames.
        periodicity: ``(frames,)`` in [0, 1], 0 in silent frames.
    """

    pitch_hz: np.ndarray
    periodicity: np.ndarray

    @property
    def voiced(self) -> np.ndarray:
        """``(frames,)`` bool: the frames with a pitch."""
        return np.isfinite(self.pitch_hz)


@dataclass(frozen=True)
class PeriodicityMetrics:
    """Attributes:
        periodicity_rmse: RMS difference of the periodicities over all frames (0 is perfect).
        vuv_f1: F1 of the estimate's voiced frames against the reference's (1 is perfect; NaN
            when neither clip has a voiced frame).
        pitch_rmse_cents: RMS pitch difference in cents over the frames voiced in both (NaN when
            there is none).
    """

    periodicity_rmse: float
    vuv_f1: float
    pitch_rmse_cents: float


def track_pitch(audio: np.ndarray, sr: int = SAMPLE_RATE, recipe: PitchTracking = VOCOS,
                device: str = "cpu") -> PitchTrack:
    """CREPE pitch and periodicity of a waveform, silence zeroed and unvoiced frames NaN.

    Args:
        audio: ``(samples,)`` waveform at ``sr`` Hz (resampled to 16 kHz when ``sr`` differs).
        sr: its sample rate in Hz.
        recipe: the tracking settings (:data:`VOCOS` by default).
        device: where CREPE runs.

    Returns:
        :class:`PitchTrack` of ``1 + (samples₁₆ − 1024) // hop`` frames (``1 + samples₁₆ // hop``
        with ``recipe.pad``), ``samples₁₆`` the length at 16 kHz.

    Raises:
        ValueError: bad audio, or (unpadded) shorter than 1024 samples at 16 kHz.
        FileNotFoundError: CREPE's weights are missing.
    """
    audio = at_rate(audio, sr, SAMPLE_RATE, "track_pitch")
    salience = crepe_salience(audio, recipe.hop, capacity=recipe.capacity, pad=recipe.pad, device=device)
    pitch, periodicity = decode_pitch(salience, recipe.fmin, recipe.fmax, recipe.decoder)
    loudness = a_weighted_loudness(audio, recipe.hop, sr=SAMPLE_RATE, n_fft=WINDOW, center=recipe.pad)
    periodicity = np.where(loudness < recipe.silence_db, 0.0, periodicity)  # (frames,)
    pitch = np.where(periodicity < recipe.voiced_threshold, np.nan, pitch)
    return PitchTrack(pitch, periodicity)


def compare_tracks(reference: PitchTrack, estimate: PitchTrack) -> PeriodicityMetrics:
    """Periodicity RMSE, V/UV F1 and pitch RMSE between two tracks of the same clip (see the
    module docstring for the formulas and where they deviate from Vocos').

    Raises:
        ValueError: tracks of different frame counts.
    """
    if reference.periodicity.shape != estimate.periodicity.shape:
        raise ValueError(f"compare_tracks: the tracks differ in frames: {reference.periodicity.shape} "
                         f"vs {estimate.periodicity.shape}")
    rmse = float(np.sqrt(np.mean((estimate.periodicity - reference.periodicity) ** 2)))
    truth, guess = reference.voiced, estimate.voiced
    tp, fp, fn = int((truth & guess).sum()), int((~truth & guess).sum()), int((truth & ~guess).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    both = truth & guess
    cents = 1200 * (np.log2(estimate.pitch_hz[both]) - np.log2(reference.pitch_hz[both]))
    pitch_rmse = float(np.sqrt(np.mean(cents**2))) if both.any() else float("nan")
    return PeriodicityMetrics(rmse, float(f1), pitch_rmse)


def periodicity_metrics(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE,
                        recipe: PitchTracking = VOCOS, device: str = "cpu") -> PeriodicityMetrics:
    """Periodicity RMSE, V/UV F1 and pitch RMSE of an estimate against its reference (Vocos' /
    CARGAN's CREPE recipe, :data:`VOCOS`).

    Args:
        reference, estimate: ``(samples,)`` waveforms at ``sr`` Hz, of equal length (resampled to
            16 kHz when ``sr`` differs).
        sr: their sample rate in Hz.
        recipe: the tracking settings.
        device: where CREPE runs.

    Returns:
        :class:`PeriodicityMetrics`.

    Raises:
        ValueError: bad audio, different lengths, or shorter than 1024 samples at 16 kHz.
        FileNotFoundError: CREPE's weights are missing.
    """
    reference, estimate = paired_audio(reference, estimate, sr, SAMPLE_RATE, "periodicity_metrics")
    return compare_tracks(track_pitch(reference, SAMPLE_RATE, recipe, device),
                          track_pitch(estimate, SAMPLE_RATE, recipe, device))
