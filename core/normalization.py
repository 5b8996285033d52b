"""Per-bin feature normalisation fitted on the training set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalizer:
    """Maps features to zero mean, unit variance per bin: ``(x - mean) / std``.

    Attributes:
        mean: ``(n_bins,)`` float32 per-bin mean of the training features.
        std: ``(n_bins,)`` float32 per-bin standard deviation (floored at ``1e-3``).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: Iterable[np.ndarray]) -> "Normalizer":
        """Fit on training features, each ``(frames, n_bins)``; statistics over all frames.

        Raises:
            ValueError: no features, or features with differing bin counts.
        """
        total = None
        total_sq = None
        count = 0
        for f in features:
            f = np.asarray(f, dtype=np.float64)
            if total is None:
                total = np.zeros(f.shape[1])
                total_sq = np.zeros(f.shape[1])
            elif f.shape[1] != total.shape[0]:
                raise ValueError(f"features with {f.shape[1]} bins after features with {total.shape[0]}")
            total += f.sum(axis=0)
            total_sq += (f**2).sum(axis=0)
            count += f.shape[0]
        if total is None or count == 0:
            raise ValueError("Normalizer.fit needs at least one frame of training features")
        mean = total / count
        var = np.maximum(total_sq / count - mean**2, 0.0)
        return cls(mean.astype(np.float32), np.maximum(np.sqrt(var), 1e-3).astype(np.float32))

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """``(frames, n_bins)`` features → normalised features, same shape."""
        return ((features - self.mean) / self.std).astype(np.float32)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize` (exact up to float rounding)."""
        return (np.asarray(normalized) * self.std + self.mean).astype(np.float32)

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Normalizer":
        return cls(np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32))
