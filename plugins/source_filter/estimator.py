"""The F0 / voicing estimator: 1-D convolutions over log-mel frames predicting log-F0 and a
voiced/unvoiced logit per frame, trained on pyin labels (:mod:`.pitch`) with an L1 on log-F0 in
voiced frames and a binary cross-entropy on voicing. MelNet generates mels only, so at inversion
this network supplies the F0 and voicing that a source-filter vocoder needs."""

from __future__ import annotations

import math

import torch

from .pitch import SPEECH_FMAX, SPEECH_FMIN


class F0Estimator(torch.nn.Module):
    """``log_mel (batch, frames, n_mels)`` → ``(log_f0 (batch, frames), vuv_logit (batch, frames))``.

    A stack of ``layers`` same-padded convolutions (kernel ``kernel``, ``channels`` wide, leaky
    ReLU) over frames, then a 1×1 convolution to two channels. Log-F0 is predicted around the
    log of the geometric centre of ``[fmin, fmax]`` and clamped to that range at inference.

    Raises:
        ValueError: ``layers < 1``, ``channels < 1`` or an even ``kernel`` (names it).
    """

    def __init__(self, n_mels: int, channels: int = 64, layers: int = 4, kernel: int = 5,
                 fmin: float = SPEECH_FMIN, fmax: float = SPEECH_FMAX):
        super().__init__()
        if layers < 1 or channels < 1 or kernel % 2 == 0:
            raise ValueError(f"inverter.estimator: layers {layers} ≥ 1, channels {channels} ≥ 1 and an odd kernel "
                             f"(got {kernel}) expected")
        convs, width = [], n_mels
        for _ in range(layers):
            convs += [torch.nn.Conv1d(width, channels, kernel, padding=kernel // 2), torch.nn.LeakyReLU(0.1)]
            width = channels
        self.body = torch.nn.Sequential(*convs)
        self.out = torch.nn.Conv1d(channels, 2, 1)
        self.log_fmin, self.log_fmax = math.log(fmin), math.log(fmax)
        self.centre = 0.5 * (self.log_fmin + self.log_fmax)

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.out(self.body(log_mel.transpose(1, 2)))  # (batch, 2, frames)
        return self.centre + y[:, 0], y[:, 1]

    def f0_hz(self, log_f0: torch.Tensor) -> torch.Tensor:
        """``exp(log_f0)`` clamped to ``[fmin, fmax]`` Hz."""
        return torch.exp(torch.clamp(log_f0, self.log_fmin, self.log_fmax))


def estimator_losses(log_f0: torch.Tensor, vuv_logit: torch.Tensor, label_f0: torch.Tensor,
                     label_voiced: torch.Tensor) -> dict[str, torch.Tensor]:
    """``f0_l1``: mean |log_f0 − log label_f0| over labelled-voiced frames (nats; 0 when none is
    voiced); ``vuv_bce``: binary cross-entropy of the voicing logit against the labels, every
    frame. All tensors ``(batch, frames)``; ``label_f0`` in Hz."""
    v = label_voiced > 0.5
    diff = torch.abs(log_f0 - torch.log(label_f0))
    f0_l1 = diff[v].mean() if bool(v.any()) else diff.sum() * 0.0
    vuv = torch.nn.functional.binary_cross_entropy_with_logits(vuv_logit, label_voiced.float())
    return {"f0_l1": f0_l1, "vuv_bce": vuv}
