"""Training batches and the validation set, in frames, from clips of any length.

``data.crop_frames`` is a **maximum** (seed 000 Table 2, "max sample duration"): a clip
longer than it is cropped at a random start; a shorter one is used whole. Batches are drawn
from buckets of clips of similar length (bucketing) and right-padded to the longest clip of
the batch, with ``lengths`` telling the model which frames are real
(:mod:`melforge.core.masking`), so padding never enters the loss or the NLL accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


def usable_frames(length: int, max_frames: int, multiple: int) -> int:
    """The frames of a ``length``-frame clip that a batch uses: at most ``max_frames``, rounded
    down to a multiple of ``multiple`` (the tiers' time factor, so that padding never shares
    a split row with data)."""
    return min(int(length), int(max_frames)) // int(multiple) * int(multiple)


def pad_batch(pieces: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``pieces``: ``(frames_k, bins)`` tensors → ``(batch, max frames_k, bins)`` zero-padded
    at the end, and ``lengths: (batch,)`` int64."""
    lengths = torch.tensor([len(p) for p in pieces], dtype=torch.int64)
    out = pieces[0].new_zeros(len(pieces), int(lengths.max()), pieces[0].shape[1])
    for k, p in enumerate(pieces):
        out[k, : len(p)] = p
    return out, lengths


class CropSampler:
    """Draws right-padded training batches ``(batch, frames, n_bins)`` with their lengths.

    Every clip of at least ``min_frames`` usable frames takes part (:func:`usable_frames`).
    The clips, sorted by usable length, are cut into ``buckets`` groups of equal count; a
    batch picks a bucket with probability proportional to its usable frames, then its clips
    within the bucket in proportion to theirs, so every usable frame is about equally likely
    and a batch holds clips of similar length. A batch is a pure function of the generator,
    so a run that draws its step-``s`` batch from a generator seeded with ``(seed, s)``
    resumes exactly.

    Args:
        features: list of ``(frames, n_bins)`` float32 arrays (normalised).
        max_frames: the longest crop (``data.crop_frames``).
        multiple: usable lengths are multiples of this (the tiers' time factor).
        min_frames: clips with fewer usable frames are skipped (default ``multiple``).
        buckets: number of length buckets (1: no bucketing).
        speakers: optional labels aligned with ``features``, returned with each batch.

    Raises:
        ValueError: ``max_frames`` is not a positive multiple of ``multiple``, or no clip has
            ``min_frames`` usable frames (names ``data.crop_frames``/``data.min_frames``).
    """

    def __init__(
        self,
        features: list[np.ndarray],
        max_frames: int,
        *,
        multiple: int = 1,
        min_frames: int | None = None,
        buckets: int = 8,
        speakers: list | None = None,
    ):
        if max_frames < multiple or max_frames % multiple:
            raise ValueError(f"data.crop_frames={max_frames}: must be a positive multiple of {multiple}")
        min_frames = int(multiple if min_frames is None else max(int(min_frames), multiple))
        usable = [usable_frames(len(f), max_frames, multiple) for f in features]
        keep = [k for k, n in enumerate(usable) if n >= min_frames]
        if not keep:
            longest = max((len(f) for f in features), default=0)
            raise ValueError(
                f"data.min_frames={min_frames}: no training clip has that many frames (longest has {longest})"
            )
        keep.sort(key=lambda k: (usable[k], k))
        self.features = [torch.from_numpy(np.ascontiguousarray(features[k])) for k in keep]
        self.usable = torch.tensor([usable[k] for k in keep], dtype=torch.int64)
        self.speakers = [speakers[k] for k in keep] if speakers is not None else None
        self.max_frames = int(max_frames)
        self.buckets = [torch.as_tensor(b) for b in np.array_split(np.arange(len(keep)), max(1, min(int(buckets), len(keep))))]
        self._bucket_weights = torch.stack([self.usable[b].sum() for b in self.buckets]).double()

    @property
    def crop_frames(self) -> int:
        """The longest batch this sampler draws (``max_frames``)."""
        return self.max_frames

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list]:
        """A batch: ``x: (batch_size, frames, n_bins)`` (``frames`` the longest usable length
        drawn), ``lengths: (batch_size,)`` valid frames per row, and the speaker label of each
        row (``None`` s when no labels were given)."""
        b = int(torch.multinomial(self._bucket_weights, 1, generator=generator))
        members = self.buckets[b]
        picks = torch.multinomial(self.usable[members].double(), batch_size, replacement=True, generator=generator)
        pieces, labels = [], []
        for k in members[picks].tolist():
            f, n = self.features[k], int(self.usable[k])
            start = int(torch.randint(0, len(f) - n + 1, (1,), generator=generator))
            pieces.append(f[start : start + n])
            labels.append(self.speakers[k] if self.speakers is not None else None)
        x, lengths = pad_batch(pieces)
        return x, lengths, labels


@dataclass
class ValidationSet:
    """Every validation clip, cut into consecutive pieces of at most ``max_frames`` usable
    frames (the last piece of a clip is shorter; a remainder under ``min_frames`` is dropped).

    Attributes:
        pieces: ``(frames_k, n_bins)`` tensors, sorted by length (longest first).
        sources: index of each piece's clip in the list given to :meth:`build`.
    """

    pieces: list[torch.Tensor]
    sources: list[int]

    @classmethod
    def build(
        cls,
        features: list[np.ndarray],
        max_frames: int,
        *,
        multiple: int = 1,
        min_frames: int | None = None,
        max_pieces: int | None = None,
    ) -> "ValidationSet":
        """Pieces of every clip of ``features`` (``(frames, n_bins)`` arrays). With
        ``max_pieces``, pieces are taken round-robin over the clips (every clip's first piece
        before any clip's second) up to that many.

        Raises:
            ValueError: no validation clip has ``min_frames`` usable frames.
        """
        min_frames = int(multiple if min_frames is None else max(int(min_frames), multiple))
        per_clip = []
        for f in features:
            cuts = []
            for s in range(0, len(f), max_frames):
                n = usable_frames(len(f) - s, max_frames, multiple)
                if n >= min_frames:
                    cuts.append((s, n))
            per_clip.append(cuts)
        chosen: list[tuple[int, int, int]] = []
        depth = 0
        while any(depth < len(c) for c in per_clip) and (max_pieces is None or len(chosen) < max_pieces):
            for k, cuts in enumerate(per_clip):
                if depth < len(cuts) and (max_pieces is None or len(chosen) < max_pieces):
                    chosen.append((k, *cuts[depth]))
            depth += 1
        if not chosen:
            raise ValueError(f"data.min_frames={min_frames}: no validation clip has that many frames")
        chosen.sort(key=lambda c: -c[2])
        pieces = [torch.from_numpy(np.ascontiguousarray(features[k][s : s + n], dtype=np.float32)) for k, s, n in chosen]
        return cls(pieces, [k for k, _, _ in chosen])

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def frames(self) -> int:
        """Valid frames over all pieces."""
        return sum(len(p) for p in self.pieces)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[int]]]:
        """``(x: (n, frames, n_bins), lengths: (n,), piece indices)`` of up to ``batch_size``
        pieces of similar length (consecutive in the length order)."""
        for start in range(0, len(self.pieces), batch_size):
            idx = list(range(start, min(start + batch_size, len(self.pieces))))
            x, lengths = pad_batch([self.pieces[i] for i in idx])
            yield x, lengths, idx
