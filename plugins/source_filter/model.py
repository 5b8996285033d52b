"""The trained module of a source-filter vocoder: the F0 / voicing ``estimator`` and the
``vocoder`` (DDSP or hn-NSF) as children. In training the vocoder follows the pyin labels; at
inversion (:meth:`SourceFilterModel.forward`) it follows the estimator, so a mel alone suffices."""

from __future__ import annotations

import torch

from .estimator import F0Estimator


class SourceFilterModel(torch.nn.Module):
    """``estimator`` (:class:`.estimator.F0Estimator`) and ``vocoder`` (a module
    ``(log_mel, f0 Hz, voiced, seeds) → audio``), both mapping frames at ``hop`` samples each.

    Attributes:
        hop: samples per mel frame (the vocoder's).
    """

    def __init__(self, estimator: F0Estimator, vocoder: torch.nn.Module):
        super().__init__()
        self.estimator, self.vocoder = estimator, vocoder
        self.hop = int(vocoder.hop)

    def estimate(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_mel (batch, frames, n_mels)`` → ``(f0 (batch, frames) Hz, voicing probability
        (batch, frames))`` from the estimator."""
        log_f0, logit = self.estimator(log_mel)
        return self.estimator.f0_hz(log_f0), torch.sigmoid(logit)

    def teacher_forced(self, log_mel: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, seeds: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training pass: the vocoder on the labels ``f0 (batch, frames)`` Hz and ``voiced
        (batch, frames)``, and the estimator's raw outputs on the mel: ``(audio (batch, frames · hop),
        y (batch, estimator.head.outputs, frames))`` (score ``y`` with ``estimator.losses``)."""
        return self.vocoder(log_mel, f0, voiced, seeds), self.estimator.outputs(log_mel)

    def forward(self, log_mel: torch.Tensor, seeds: torch.Tensor | None = None) -> torch.Tensor:
        """Audio from the mel alone: the estimator's F0 and its voicing decision (probability
        > 0.5) drive the vocoder.

        Args:
            log_mel: ``(batch, frames, n_mels)`` natural-log mel power.
            seeds: ``(batch,)`` the noise seed of each row (default 0 for every row, so that a
                clip inverts the same alone or in a batch).

        Returns:
            ``(batch, frames · hop)`` audio.
        """
        f0, prob = self.estimate(log_mel)
        if seeds is None:
            seeds = torch.zeros(log_mel.shape[0], dtype=torch.int64)
        return self.vocoder(log_mel, f0, (prob > 0.5).to(log_mel.dtype), seeds)
