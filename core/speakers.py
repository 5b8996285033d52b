"""Speaker identity as conditioning: one-hot vectors broadcast along time and frequency
(seed 000 §4.3)."""

from __future__ import annotations

from typing import Iterable

import torch


class SpeakerVocabulary:
    """The speaker labels a model is conditioned on, in a fixed (sorted) order.

    Args:
        labels: speaker labels (duplicates and order do not matter).

    Raises:
        ValueError: no labels, or a ``None`` label (a clip without a speaker).
    """

    def __init__(self, labels: Iterable[str | None]):
        labels = set(labels)
        if not labels or None in labels:
            raise ValueError(
                "speaker conditioning needs a speaker label on every clip (data.speaker_conditioning=true "
                "with a dataset whose clips have no speaker?)"
            )
        self.labels: list[str] = sorted(str(label) for label in labels)
        self._index = {label: k for k, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        """Position of ``label``.

        Raises:
            KeyError: an unknown label (the message lists the known ones).
        """
        try:
            return self._index[str(label)]
        except KeyError:
            raise KeyError(f"unknown speaker {label!r}; known speakers: {', '.join(self.labels)}") from None

    def one_hot(self, labels: list[str]) -> torch.Tensor:
        """``labels`` (length ``batch``) → ``(batch, speakers)`` float32 one-hot ``z``."""
        out = torch.zeros(len(labels), len(self.labels))
        out[torch.arange(len(labels)), torch.tensor([self.index(x) for x in labels], dtype=torch.long)] = 1.0
        return out
