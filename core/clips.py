"""A dataset's audio at a representation's rate, trimmed and split into train and valid by clip
id — what a learner that trains on waveforms (a vocoder) starts from."""

from __future__ import annotations

import numpy as np

from .dataset import AudioDataset
from .features import in_valid_split
from .representation import Representation


def split_clips(
    dataset: AudioDataset, representation: Representation, valid_fraction: float, trim_db: float | None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[dict]]:
    """``dataset``'s clips at ``representation.sr`` Hz, silence trimmed ``trim_db`` dB under the
    peak (``None``: kept), split by the hash of their id (:func:`melforge.core.features.in_valid_split`).

    Returns:
        ``(train, valid, skipped)``: lists of ``(samples,)`` float32 waveforms, and
        ``{"id", "reason"}`` for clips left out (silent, shorter than one hop after trimming).

    Raises:
        ValueError: the split leaves train or valid empty (names ``data.valid_fraction`` and
            says how many clips there were).
    """
    import librosa  # deferred: librosa is slow to import and only audio-trained learners need it

    train, valid, skipped = [], [], []
    for clip in dataset.clips(representation.sr):
        audio = np.asarray(clip.audio, dtype=np.float32)
        if not audio.size or not np.abs(audio).max() > 0:
            skipped.append({"id": clip.id, "reason": "digital silence"})
            continue
        if trim_db is not None:
            audio, _ = librosa.effects.trim(audio, top_db=float(trim_db))
        if len(audio) < representation.hop_length:
            skipped.append({"id": clip.id, "reason": "shorter than one frame after trimming"})
            continue
        (valid if in_valid_split(clip.id, valid_fraction) else train).append(audio)
    if not train or not valid:
        raise ValueError(
            f"data.valid_fraction={valid_fraction}: the split of {len(train) + len(valid)} clips left "
            f"{len(train)} train and {len(valid)} valid clips; both must be non-empty"
        )
    return train, valid, skipped
