"""F0 and voicing labels from ``librosa.pyin`` (Mauch & Dixon 2014), frame-aligned to a centred
STFT of hop ``hop`` (frame ``t`` centred on sample ``t · hop``, as the ``log_mel``
representation), cached on disk, and the figures that score an estimate against them: the
absolute error in cents on frames voiced in both, and the voiced/unvoiced accuracy."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from melforge.core.atomic import atomic_path
from melforge.core.paths import cache_dir

log = logging.getLogger("melforge.data")

#: Speech F0 range of the labels (Hz): pyin's candidates lie between these.
SPEECH_FMIN, SPEECH_FMAX = 50.0, 600.0


def pyin_labels(audio: np.ndarray, sr: int, hop: int, frame_length: int,
                fmin: float = SPEECH_FMIN, fmax: float = SPEECH_FMAX) -> tuple[np.ndarray, np.ndarray]:
    """pyin's F0 and voicing of ``audio (samples,)`` at ``sr`` Hz, one value per centred frame.

    Args:
        hop: samples per frame; the result has ``1 + samples // hop`` frames, as the mel.
        frame_length: pyin's analysis window (samples; ≥ 2 periods of ``fmin``).
        fmin, fmax: the F0 search range (Hz).

    Returns:
        ``(f0 (frames,) float32 Hz, voiced (frames,) float32 in {0, 1})``; unvoiced frames carry
        the log-linear interpolation of their voiced neighbours' F0 (the nearest at the edges,
        ``sqrt(fmin · fmax)`` in a clip with no voiced frame), so every frame has an F0 that
        an oscillator can follow.

    Raises:
        ValueError: ``frame_length`` shorter than two periods of ``fmin`` (names both).
    """
    import librosa  # deferred: librosa is slow to import and only label analysis needs it

    if frame_length < 2 * sr / fmin:
        raise ValueError(f"pyin: frame_length {frame_length} samples is under two periods of fmin {fmin} Hz at {sr} Hz")
    f0, voiced, _ = librosa.pyin(np.asarray(audio, dtype=np.float32), fmin=fmin, fmax=fmax, sr=sr,
                                 frame_length=frame_length, hop_length=hop, center=True)
    voiced = voiced & np.isfinite(f0)
    return fill_unvoiced(f0, voiced, np.sqrt(fmin * fmax)), voiced.astype(np.float32)


def fill_unvoiced(f0: np.ndarray, voiced: np.ndarray, default: float) -> np.ndarray:
    """``f0 (frames,)`` with unvoiced frames set by log-linear interpolation between voiced ones
    (held at the edges); ``default`` Hz everywhere when no frame is voiced."""
    frames = np.arange(len(f0))
    if not voiced.any():
        return np.full(len(f0), default, dtype=np.float32)
    log_f0 = np.interp(frames, frames[voiced], np.log(f0[voiced]))
    return np.exp(log_f0).astype(np.float32)


def cached_pyin_labels(audios: list[np.ndarray], sr: int, hop: int, frame_length: int,
                       fmin: float = SPEECH_FMIN, fmax: float = SPEECH_FMAX) -> list[np.ndarray]:
    """:func:`pyin_labels` of every clip as ``(frames, 2)`` float32 ``[f0 Hz, voiced]``, read
    from ``$MELFORGE_CACHE/pyin/<key>.npz`` when the same audio (by a hash of its samples) was
    labelled with the same settings before, else computed and written there."""
    digest = hashlib.sha256(json.dumps([sr, hop, frame_length, fmin, fmax]).encode())
    for a in audios:
        digest.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    path = cache_dir("pyin") / f"{digest.hexdigest()[:20]}.npz"
    if path.exists():
        with np.load(path) as data:
            flat, lengths = data["labels"], data["lengths"]
        return [np.ascontiguousarray(x) for x in np.split(flat, np.cumsum(lengths)[:-1])]
    log.info(f"labelling F0 of {len(audios)} clips ({sum(len(a) for a in audios) / sr:.0f} s) with pyin…")
    labels = [np.stack(pyin_labels(a, sr, hop, frame_length, fmin, fmax), axis=1) for a in audios]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, labels=np.concatenate(labels), lengths=np.array([len(x) for x in labels], dtype=np.int64))
    log.info(f"cached the pyin labels in {path}")
    return labels


def cents(f0: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``1200 · log2(f0 / reference)``: the interval from ``reference`` to ``f0`` in cents."""
    return 1200.0 * np.log2(np.asarray(f0, dtype=np.float64) / np.asarray(reference, dtype=np.float64))


def f0_figures(f0: np.ndarray, voiced_prob: np.ndarray, label_f0: np.ndarray, label_voiced: np.ndarray) -> dict[str, float]:
    """How well an estimate matches the labels, over frames of any shape.

    Args:
        f0: estimated F0 (Hz); ``voiced_prob`` its voicing probability (voiced where > 0.5).
        label_f0, label_voiced: the pyin labels (Hz; 1 voiced, 0 not).

    Returns:
        ``f0_cents``: median |cents| over frames voiced in the labels (the estimate's F0 there,
        whatever its voicing says; NaN when no frame is voiced); ``f0_cents_mean``: their mean;
        ``vuv_accuracy``: the share of frames whose voicing decision matches the label.
    """
    v = np.asarray(label_voiced) > 0.5
    err = np.abs(cents(np.asarray(f0)[v], np.asarray(label_f0)[v]))
    return {"f0_cents": float(np.median(err)) if err.size else float("nan"),
            "f0_cents_mean": float(np.mean(err)) if err.size else float("nan"),
            "vuv_accuracy": float(np.mean((np.asarray(voiced_prob) > 0.5) == v))}
