"""Aligned (log-mel, audio) crops for a vocoder: frame ``t`` of a clip's mel is centred on
sample ``t · hop`` (a centred STFT), so ``crop_frames`` frames from frame ``f`` go with the
audio samples ``[f · hop, (f + crop_frames) · hop)``, as HiFi-GAN's training segments do."""

from __future__ import annotations

import numpy as np
import torch


class AlignedCrops:
    """Random training crops (every start frame of every clip equally likely, a pure function
    of the generator) and a fixed validation set.

    Args:
        mels: ``(frames, n_mels)`` float32 log-mel of each clip.
        audios: ``(samples,)`` float32 audio of each clip (zero-padded to ``frames · hop``).
        hop: samples per frame.
        crop_frames: frames per crop.

    Raises:
        ValueError: no clip has ``crop_frames`` frames (names ``data.crop_frames``).
    """

    def __init__(self, mels: list[np.ndarray], audios: list[np.ndarray], hop: int, crop_frames: int):
        keep = [k for k, m in enumerate(mels) if len(m) >= crop_frames]
        if not keep:
            longest = max((len(m) for m in mels), default=0)
            raise ValueError(f"data.crop_frames={crop_frames} is longer than every clip (longest has {longest} frames)")
        self.hop, self.crop_frames = int(hop), int(crop_frames)
        self.mels = [torch.from_numpy(np.ascontiguousarray(mels[k], dtype=np.float32)) for k in keep]
        self.audios = []
        for k in keep:
            a = np.zeros(len(mels[k]) * self.hop, dtype=np.float32)
            n = min(len(a), len(audios[k]))
            a[:n] = audios[k][:n]
            self.audios.append(torch.from_numpy(a))
        spans = torch.tensor([len(m) - crop_frames + 1 for m in self.mels], dtype=torch.float64)
        self.weights = spans / spans.sum()

    def crop(self, k: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip ``k`` from frame ``start``: ``(mel (crop_frames, n_mels), audio (crop_frames · hop,))``."""
        n, h = self.crop_frames, self.hop
        return self.mels[k][start : start + n], self.audios[k][start * h : (start + n) * h]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mel (batch, crop_frames, n_mels), audio (batch, crop_frames · hop))`` random crops."""
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        rows = []
        for k in picks.tolist():
            start = int(torch.randint(0, len(self.mels[k]) - self.crop_frames + 1, (1,), generator=generator))
            rows.append(self.crop(k, start))
        return torch.stack([m for m, _ in rows]), torch.stack([a for _, a in rows])

    def fixed(self, max_crops: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Consecutive non-overlapping crops of each clip, round-robin over the clips, at most
        ``max_crops``: ``(mel (crops, crop_frames, n_mels), audio (crops, crop_frames · hop))``."""
        n = self.crop_frames
        per_clip = [list(range(0, len(m) - n + 1, n)) for m in self.mels]
        rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        depth = 0
        while len(rows) < max_crops and any(depth < len(p) for p in per_clip):
            rows += [self.crop(k, p[depth]) for k, p in enumerate(per_clip) if depth < len(p)]
            depth += 1
        rows = rows[:max_crops]
        return torch.stack([m for m, _ in rows]), torch.stack([a for _, a in rows])
