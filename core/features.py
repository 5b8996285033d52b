"""From a dataset and a representation to cached per-clip features with a train/valid split."""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
import warnings
from dataclasses import dataclass, field

import librosa
import numpy as np

from .atomic import atomic_path
from .dataset import AudioDataset, DatasetError
from .paths import cache_dir
from .representation import Representation

log = logging.getLogger("melforge.data")


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
        skipped: ``{"id": clip id or file, "reason": why}`` for every clip left out (digital
            silence, too short after trimming, non-finite features, or skipped by the dataset
            itself), also when the features came from the cache.
    """

    train: list[np.ndarray]
    valid: list[np.ndarray]
    train_ids: list[str]
    valid_ids: list[str]
    train_speakers: list[str | None]
    valid_speakers: list[str | None]
    skipped: list[dict] = field(default_factory=list)

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
            ids, speakers, feats, skipped = _load(path)
        else:
            log.info(f"analysing {type(dataset).__name__} with {type(representation).__name__}…")
            ids, speakers, feats, skipped = analyse(dataset, representation, trim_db)
            for item in skipped:
                log.warning(f"skipped {item['id']}: {item['reason']}")
            if not feats:
                raise DatasetError(
                    f"{type(dataset).__name__}: no clip could be analysed ({len(skipped)} skipped: "
                    + "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:5]) + ")"
                )
            if use_cache:
                _save(path, ids, speakers, feats, skipped)
                log.info(f"cached features of {len(feats)} clips in {path}")
        is_valid = [in_valid_split(clip_id, valid_fraction) for clip_id in ids]

        def part(values: list, valid: bool) -> list:
            return [v for v, flag in zip(values, is_valid) if flag == valid]

        corpus = cls(
            train=part(feats, False), valid=part(feats, True),
            train_ids=part(ids, False), valid_ids=part(ids, True),
            train_speakers=part(speakers, False), valid_speakers=part(speakers, True),
            skipped=skipped,
        )
        if not corpus.train or not corpus.valid:
            raise DatasetError(
                f"{type(dataset).__name__}: the split of {len(feats)} clips with valid_fraction={valid_fraction} "
                f"left {len(corpus.train)} train and {len(corpus.valid)} valid clips; both must be non-empty"
            )
        return corpus


def analyse(
    dataset: AudioDataset, representation: Representation, trim_db: float | None
) -> tuple[list[str], list[str | None], list[np.ndarray], list[dict]]:
    """Features of every clip of ``dataset``, leaving out (and saying why) digital silence,
    clips shorter than one frame after trimming, and clips whose features are not finite
    (e.g. finite audio so loud that its power overflows). Files the dataset itself skips (its
    ``skipping <file>: <why>`` warnings) are recorded too.

    Returns:
        ``(ids, speakers, features, skipped)``; ``features[k]`` is ``(frames, n_bins)`` float32
        and finite; ``skipped`` holds ``{"id", "reason"}`` dicts.
    """
    ids: list[str] = []
    speakers: list[str | None] = []
    feats: list[np.ndarray] = []
    skipped: list[dict] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for clip in dataset.clips(representation.sr):
            audio = clip.audio
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak == 0.0:
                skipped.append({"id": clip.id, "reason": "digital silence (every sample is 0)"})
                continue
            if trim_db is not None and np.isfinite(peak):
                with np.errstate(over="ignore", invalid="ignore"):
                    audio, _ = librosa.effects.trim(audio, top_db=trim_db)
            if len(audio) < representation.hop_length:
                skipped.append({"id": clip.id, "reason": f"shorter than one frame ({representation.hop_length} samples)"
                                + (f" after trimming silence below {trim_db} dB" if trim_db is not None else "")})
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                features = representation.analyze(audio)
            if not np.isfinite(features).all():
                skipped.append({"id": clip.id, "reason": f"its features are not finite (audio peak {peak:.3g}; "
                                "is the file's scale wrong?)"})
                continue
            ids.append(clip.id)
            speakers.append(clip.speaker)
            feats.append(features)
    for w in caught:
        text = str(w.message)
        if text.startswith("skipping "):
            name, _, reason = text[len("skipping "):].partition(": ")
            skipped.append({"id": name, "reason": reason})
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ids, speakers, feats, skipped


def _save(path, ids, speakers, feats, skipped) -> None:
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    meta = json.dumps({"ids": ids, "speakers": speakers, "skipped": skipped})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=np.concatenate(feats), lengths=lengths, meta=np.array(meta))


def _load(path):
    with np.load(path) as data:
        flat, lengths, meta = data["features"], data["lengths"], json.loads(str(data["meta"]))
    feats = np.split(flat, np.cumsum(lengths)[:-1])
    return meta["ids"], meta["speakers"], [np.ascontiguousarray(f) for f in feats], meta.get("skipped", [])
