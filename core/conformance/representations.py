"""A representation's contract (:class:`melforge.core.representation.Representation`): its
features, its image, its refusals, and the round trip audio → features → audio → features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melforge.core.inverter import Inverter
from melforge.core.representation import Representation

from .expect import expect_value_error
from .inputs import part_name


@dataclass
class RepresentationReport:
    """What :func:`check_representation` measured.

    Attributes:
        frames: frames of the analysed audio.
        feature_error: ``‖f′ − f‖_F / ‖f − mean f‖_F`` of the features ``f′`` of the round-trip
            audio against those ``f`` of the audio.
        sample_error: largest ``|y′ − y|`` of the round-trip audio ``y′`` against the audio
            ``y`` (``None`` when not asked for).
    """

    frames: int
    feature_error: float
    sample_error: float | None = None


def _check_frames(who: str, rows: int, samples: int, hop: int) -> None:
    """``rows`` frames stand for ``samples`` samples at ``hop`` samples a frame, within one
    (centred STFT frames: ``1 + samples // hop``; one frame a sample: ``samples``)."""
    if abs(rows - samples / hop) > 1 + 1e-9:
        raise AssertionError(
            f"{who} has {rows} frames for {samples} samples at {hop} samples a frame; expected about {samples / hop:.1f}"
        )


def _check_features(who: str, features: object, n_bins: int) -> np.ndarray:
    if not isinstance(features, np.ndarray):
        raise AssertionError(f"{who} returned a {type(features).__qualname__}, not a numpy array")
    if features.ndim != 2 or features.shape[1] != n_bins:
        raise AssertionError(f"{who} returned shape {features.shape}, expected (frames, {n_bins})")
    if features.dtype != np.float32:
        raise AssertionError(f"{who} returned dtype {features.dtype}, expected float32")
    if not np.isfinite(features).all():
        raise AssertionError(f"{who} returned non-finite features")
    return features


def _check_image(who: str, image: object, samples: int, hop: int) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2:
        raise AssertionError(f"{who} returned {getattr(image, 'shape', type(image).__qualname__)}, expected a 2-D array")
    if not np.isfinite(image).all():
        raise AssertionError(f"{who} returned non-finite values")
    _check_frames(who, image.shape[0], samples, hop)


def _check_audio_out(who: str, audio: object, length: int) -> np.ndarray:
    if not isinstance(audio, np.ndarray) or audio.shape != (length,) or audio.dtype != np.float32:
        raise AssertionError(
            f"{who} returned {getattr(audio, 'dtype', type(audio).__qualname__)} "
            f"{getattr(audio, 'shape', '')}, expected float32 ({length},)"
        )
    if not np.isfinite(audio).all():
        raise AssertionError(f"{who} returned non-finite samples")
    return audio


def _check_refusals(name: str, representation: Representation, audio: np.ndarray, features: np.ndarray,
                    inverter: Inverter | None) -> None:
    """Bad audio (NaN, 2-D, empty) and bad features (NaN, a bin too few; no inverter for a
    spectrogram) raise ``ValueError``."""
    nan_audio = audio.copy()
    nan_audio[len(audio) // 2] = np.nan
    bad_audio = {"audio holding NaN": nan_audio, "2-D audio (2, samples)": np.stack([audio, audio]),
                 "empty audio": audio[:0]}
    for why, bad in bad_audio.items():
        expect_value_error(f"{name}.analyze", why, lambda: representation.analyze(bad))
    nan_features = features.copy()
    nan_features[features.shape[0] // 2, 0] = np.nan
    bad_features = {"features holding NaN": nan_features, "features with a bin too few": features[:, :-1]}
    for why, bad in bad_features.items():
        expect_value_error(f"{name}.to_audio", why, lambda: representation.to_audio(bad, inverter))
    if representation.inverter_input is not None:
        expect_value_error(f"{name}.to_audio", "no inverter", lambda: representation.to_audio(features, None))


def check_representation(
    representation: Representation,
    audio: np.ndarray,
    *,
    inverter: Inverter | None = None,
    feature_tolerance: float,
    sample_tolerance: float | None = None,
) -> RepresentationReport:
    """Assert that ``representation`` keeps the
    :class:`~melforge.core.representation.Representation` contract on ``audio``.

    Checked:

    * ``analyze(audio)`` is a finite float32 ``(frames, n_bins)`` array whose ``frames`` agree
      with :attr:`hop_length` (within one frame of ``samples / hop_length``);
    * ``to_image(features)`` is a finite 2-D array, one row per ``image_hop_length`` samples
      (within one);
    * the round trip: ``y′ = to_audio(features, inverter, length=samples)`` is a finite float32
      ``(samples,)`` waveform, and the features of ``y′`` are within ``feature_tolerance`` of
      the features of ``audio`` (``‖f′ − f‖_F / ‖f − mean f‖_F``, which ignores the offset a
      log scale chooses); with ``sample_tolerance``, also ``max |y′ − y| ≤ sample_tolerance``
      (for a representation that decodes samples, not for a phase-blind spectrogram);
    * refusals with ``ValueError``: audio holding NaN, 2-D or empty; features holding NaN or
      with a bin too few; a spectrogram (``inverter_input`` set) given no inverter.

    Args:
        representation: the representation.
        audio: ``(samples,)`` real audio at ``representation.sr`` Hz (a second or two).
        inverter: what turns spectrogram features back into audio (ignored by a waveform
            representation); use one good enough for the stated tolerance (Griffin-Lim with
            a few dozen iterations).
        feature_tolerance: the largest feature error allowed.
        sample_tolerance: the largest sample error allowed, or ``None`` (not checked).

    Returns:
        A :class:`RepresentationReport` with the errors measured.

    Raises:
        AssertionError: the first failed check, naming the representation and what differs.
        ValueError: ``audio`` is not a finite 1-D waveform.
    """
    name = part_name(representation)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        raise ValueError(f"check_representation: audio must be a finite (samples,) waveform, got shape {audio.shape}")
    n = audio.shape[0]
    features = _check_features(f"{name}.analyze", representation.analyze(audio), representation.n_bins)
    _check_frames(f"{name}.analyze", features.shape[0], n, representation.hop_length)
    _check_image(f"{name}.to_image", representation.to_image(features), n, representation.image_hop_length)
    _check_refusals(name, representation, audio, features, inverter)
    back = _check_audio_out(f"{name}.to_audio", representation.to_audio(features, inverter, length=n), n)
    again = _check_features(f"{name}.analyze (of the round trip)", representation.analyze(back), representation.n_bins)
    f = features.astype(np.float64)
    spread = float(np.linalg.norm(f - f.mean()))
    feature_error = float(np.linalg.norm(again - f)) / max(spread, 1e-30)
    if not feature_error <= feature_tolerance:
        raise AssertionError(
            f"{name}: the features of the round-trip audio differ from the audio's by {feature_error:.4g} "
            f"(‖f′ − f‖ / ‖f − mean f‖), more than the tolerance {feature_tolerance:g}"
        )
    report = RepresentationReport(features.shape[0], feature_error)
    if sample_tolerance is not None:
        report.sample_error = float(np.max(np.abs(back.astype(np.float64) - audio)))
        if not report.sample_error <= sample_tolerance:
            raise AssertionError(
                f"{name}: the round-trip audio differs from the audio by up to {report.sample_error:.4g}, more than "
                f"the tolerance {sample_tolerance:g}"
            )
    return report
