"""From a dataset and a representation to cached per-clip features with a train/valid split."""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from dataclasses import dataclass

import librosa
import numpy as np

from .atomic import atomic_path
from .dataset import AudioDataset, DatasetError
from .paths import cache_dir
from .representation import Representation


def in_valid_split(clip_id: str, valid_fraction: float) -> bool:
    """Deterministic split: a clip is in the validation set when the CRC-32 of its id falls in
    the lowest ``valid_fraction`` of the hash range (stable across machines and runs)."""
    return (zlib.crc32(clip_id.encode("utf-8")) % 10_000) < valid_fraction * 10_000


@dataclass
class FeatureCorpus:
    """Unnormalised features of every usable clip, split into train and valid.

    Attributes:
        train, valid: lists of ``(frames, n_bins)`` float32 features.
        train_ids, valid_ids: the clip ids, aligned with ``train`` / ``valid``.
        train_speakers, valid_speakers: speaker labels (``None`` where the corpus has none).
    """

    train: list[np.ndarray]
    valid: list[np.ndarray]
    train_ids: list[str]
    valid_ids: list[str]
    train_speakers: list[str | None]
    valid_speakers: list[str | None]

    @classmethod
    def build(
        cls,
        dataset: AudioDataset,
        representation: Representation,
        *,
        valid_fraction: float = 0.05,
        trim_db: float | None = 60.0,
        use_cache: bool = True,
    ) -> "FeatureCorpus":
        """Analyse every clip (or load the cached result) and split it.

        Args:
            dataset: the corpus.
            representation: the analysis, at its own sample rate.
            valid_fraction: share of clips (by id hash) held out for validation, in (0, 1).
            trim_db: leading/trailing audio quieter than this many dB below the clip's peak is
                trimmed before analysis (``None``: keep everything).
            use_cache: read/write ``$MELFORGE_CACHE/features/<key>.npz``, keyed on the dataset's
                fingerprint and the representation's config.

        Raises:
            DatasetError: no clip is long enough to analyse, or the split leaves train or valid
                empty (the message says how many clips there were).
            ValueError: ``valid_fraction`` outside (0, 1).
        """
        if not 0 < valid_fraction < 1:
            raise ValueError(f"data.valid_fraction must be in (0, 1), got {valid_fraction}")
        key_src = json.dumps(
            {
                "dataset": dataset.fingerprint(),
                "representation": type(representation).__name__,
                "config": representation.config(),
                "trim_db": trim_db,
            },
            sort_keys=True,
        )
        key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
        path = cache_dir("features") / f"{key}.npz"
        if use_cache and path.exists():
            ids, speakers, feats = _load(path)
        else:
            ids, speakers, feats = [], [], []
            print(f"melforge: analysing {type(dataset).__name__} with {type(representation).__name__}…", file=sys.stderr)
            for clip in dataset.clips(representation.sr):
                audio = clip.audio
                if trim_db is not None and np.abs(audio).max() > 0:
                    audio, _ = librosa.effects.trim(audio, top_db=trim_db)
                if len(audio) < representation.hop_length:
                    continue
                ids.append(clip.id)
                speakers.append(clip.speaker)
                feats.append(representation.analyze(audio))
            if not feats:
                raise DatasetError(f"{type(dataset).__name__}: no clip long enough to analyse")
            if use_cache:
                _save(path, ids, speakers, feats)
                print(f"melforge: cached features of {len(feats)} clips in {path}", file=sys.stderr)
        is_valid = [in_valid_split(clip_id, valid_fraction) for clip_id in ids]

        def part(values: list, valid: bool) -> list:
            return [v for v, flag in zip(values, is_valid) if flag == valid]

        corpus = cls(
            train=part(feats, False), valid=part(feats, True),
            train_ids=part(ids, False), valid_ids=part(ids, True),
            train_speakers=part(speakers, False), valid_speakers=part(speakers, True),
        )
        if not corpus.train or not corpus.valid:
            raise DatasetError(
                f"{type(dataset).__name__}: the split of {len(feats)} clips with valid_fraction={valid_fraction} "
                f"left {len(corpus.train)} train and {len(corpus.valid)} valid clips; both must be non-empty"
            )
        return corpus


def _save(path, ids, speakers, feats) -> None:
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    meta = json.dumps({"ids": ids, "speakers": speakers})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=np.concatenate(feats), lengths=lengths, meta=np.array(meta))


def _load(path):
    with np.load(path) as data:
        flat, lengths, meta = data["features"], data["lengths"], json.loads(str(data["meta"]))
    feats = np.split(flat, np.cumsum(lengths)[:-1])
    return meta["ids"], meta["speakers"], [np.ascontiguousarray(f) for f in feats]
