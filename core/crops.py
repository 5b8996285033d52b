"""Fixed-length crops in frames: random training batches and a fixed validation set."""

from __future__ import annotations

import numpy as np
import torch


class CropSampler:
    """Draws ``(batch, crop_frames, n_bins)`` crops from normalised features.

    A batch is a pure function of the generator passed in, so a run that draws its step-``s``
    batch from a generator seeded with ``(seed, s)`` resumes exactly.

    Args:
        features: list of ``(frames, n_bins)`` float32 arrays (normalised).
        crop_frames: frames per crop.
        speakers: optional labels aligned with ``features``, returned with each batch.

    Raises:
        ValueError: no clip has at least ``crop_frames`` frames.
    """

    def __init__(self, features: list[np.ndarray], crop_frames: int, speakers: list | None = None):
        keep = [k for k, f in enumerate(features) if len(f) >= crop_frames]
        if not keep:
            longest = max((len(f) for f in features), default=0)
            raise ValueError(
                f"data.crop_frames={crop_frames} is longer than every clip (longest has {longest} frames)"
            )
        self.features = [torch.from_numpy(np.ascontiguousarray(features[k])) for k in keep]
        self.speakers = [speakers[k] for k in keep] if speakers is not None else None
        self.crop_frames = int(crop_frames)
        spans = torch.tensor([len(f) - crop_frames + 1 for f in self.features], dtype=torch.float64)
        self._weights = spans / spans.sum()  # every valid crop start equally likely

    def batch(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch_size, crop_frames, n_bins)`` random crops."""
        return self.draw(batch_size, generator)[0]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, list]:
        """Random crops ``(batch_size, crop_frames, n_bins)`` and the speaker label of each (a
        list of ``None`` when no labels were given). Same draws as :meth:`batch`."""
        clips = torch.multinomial(self._weights, batch_size, replacement=True, generator=generator)
        out, labels = [], []
        for k in clips.tolist():
            f = self.features[k]
            start = int(torch.randint(0, len(f) - self.crop_frames + 1, (1,), generator=generator))
            out.append(f[start : start + self.crop_frames])
            labels.append(self.speakers[k] if self.speakers is not None else None)
        return torch.stack(out), labels


def fixed_crops(
    features: list[np.ndarray], crop_frames: int, max_crops: int, *, with_sources: bool = False
) -> torch.Tensor | tuple[torch.Tensor, list[int]]:
    """Deterministic evaluation set: consecutive non-overlapping crops from each clip in turn,
    round-robin over clips, at most ``max_crops``. Returns ``(crops, crop_frames, n_bins)``, and
    with ``with_sources`` also the index into ``features`` of each crop's clip.

    Raises:
        ValueError: no clip has ``crop_frames`` frames.
    """
    per_clip = [
        [f[s : s + crop_frames] for s in range(0, len(f) - crop_frames + 1, crop_frames)] for f in features
    ]
    crops: list[np.ndarray] = []
    sources: list[int] = []
    depth = 0
    while len(crops) < max_crops and any(depth < len(c) for c in per_clip):
        for k, c in enumerate(per_clip):
            if depth < len(c):
                crops.append(c[depth])
                sources.append(k)
        depth += 1
    if not crops:
        raise ValueError(f"no validation clip has data.crop_frames={crop_frames} frames")
    out = torch.from_numpy(np.stack(crops[:max_crops]).astype(np.float32))
    return (out, sources[:max_crops]) if with_sources else out
