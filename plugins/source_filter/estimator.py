"""The F0 / voicing estimator: log-mel frames → log-F0 and a voiced/unvoiced logit per frame,
trained on pyin labels (:mod:`.pitch`) with its head's F0 loss in voiced frames (an L1 on log-F0,
or CREPE's pitch-bin cross-entropy: :mod:`.pitch_heads`) and a binary cross-entropy on voicing.
MelNet generates mels only, so at inversion this network supplies the F0 and voicing that a
source-filter vocoder needs.

Two parts: an optional 2-D *front end* (convolutions over mel bands × frames of each frame's
level relative to its loudest band, so that a harmonic pattern is recognised wherever it lies on
the mel axis and at any loudness), then a 1-D stack over frames whose channels are the mel bands
(or the front end's feature maps of every band), ending in a 1×1 convolution to the head's
channels."""

from __future__ import annotations

import math

import torch

from .pitch import SPEECH_FMAX, SPEECH_FMIN
from .pitch_heads import RegressionHead


def frequency_front_end(channels: int, layers: int, kernel: tuple[int, int]) -> torch.nn.Sequential:
    """``layers`` same-padded 2-D convolutions ``(batch, 1 → channels, n_mels, frames)`` with
    kernel ``(bands, frames)`` and leaky ReLU (slope 0.1).

    Raises:
        ValueError: ``channels`` or ``layers`` below 1, an even kernel side (names the key).
    """
    if channels < 1 or layers < 1 or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"inverter.estimator_front_channels {channels} ≥ 1, estimator_front_layers {layers} ≥ 1 "
                         f"and an odd (bands, frames) kernel (got {kernel}) expected")
    convs, width = [], 1
    for _ in range(layers):
        convs += [torch.nn.Conv2d(width, channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2)),
                  torch.nn.LeakyReLU(0.1)]
        width = channels
    return torch.nn.Sequential(*convs)


class F0Estimator(torch.nn.Module):
    """``log_mel (batch, frames, n_mels)`` → ``(log_f0 (batch, frames), vuv_logit (batch, frames))``.

    Without a front end (``front_channels=0``), a stack of ``layers`` same-padded convolutions
    (kernel ``kernel`` frames, ``channels`` wide, leaky ReLU) over the log-mel frames, then a 1×1
    convolution to two channels. With one (``front_channels > 0``), each frame is first taken
    relative to its loudest band (``log_mel − max over mels``, nats), passed through
    :func:`frequency_front_end` (``front_layers`` 2-D convolutions of ``front_kernel`` (mel bands,
    frames), ``front_channels`` maps), and the 1-D stack reads the ``front_channels · n_mels``
    features of every frame. The last 1×1 convolution gives ``head``'s channels, which the head
    decodes to log-F0 and the voicing logit (default: a :class:`.pitch_heads.RegressionHead`
    around the log of the geometric centre of ``[fmin, fmax]``); F0 is clamped to that range at
    inference.

    Raises:
        ValueError: ``layers < 1``, ``channels < 1``, an even ``kernel``, ``front_channels < 0``
            or a bad front end (names it).
    """

    def __init__(self, n_mels: int, channels: int = 64, layers: int = 4, kernel: int = 5,
                 fmin: float = SPEECH_FMIN, fmax: float = SPEECH_FMAX, front_channels: int = 0,
                 front_layers: int = 3, front_kernel: tuple[int, int] = (7, 3), head: torch.nn.Module | None = None):
        super().__init__()
        if layers < 1 or channels < 1 or kernel % 2 == 0:
            raise ValueError(f"inverter.estimator: layers {layers} ≥ 1, channels {channels} ≥ 1 and an odd kernel "
                             f"(got {kernel}) expected")
        if front_channels < 0:
            raise ValueError(f"inverter.estimator_front_channels={front_channels}: expected ≥ 0 (0: no front end)")
        self.front = frequency_front_end(front_channels, front_layers, tuple(front_kernel)) if front_channels else None
        convs, width = [], n_mels * max(1, front_channels)
        for _ in range(layers):
            convs += [torch.nn.Conv1d(width, channels, kernel, padding=kernel // 2), torch.nn.LeakyReLU(0.1)]
            width = channels
        self.body = torch.nn.Sequential(*convs)
        self.head = head if head is not None else RegressionHead(fmin, fmax)
        self.out = torch.nn.Conv1d(channels, self.head.outputs, 1)
        self.log_fmin, self.log_fmax = math.log(fmin), math.log(fmax)

    def features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``log_mel (batch, frames, n_mels)`` → the 1-D stack's input ``(batch, width, frames)``."""
        x = log_mel.transpose(1, 2)  # (batch, n_mels, frames)
        if self.front is None:
            return x
        relative = x - x.amax(dim=1, keepdim=True)  # each frame's level under its loudest band
        return self.front(relative.unsqueeze(1)).flatten(1, 2)  # (batch, front_channels · n_mels, frames)

    def outputs(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``log_mel (batch, frames, n_mels)`` → the head's channels ``(batch, head.outputs, frames)``."""
        return self.out(self.body(self.features(log_mel)))

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_mel (batch, frames, n_mels)`` → ``(log_f0 (batch, frames), vuv_logit (batch, frames))``."""
        return self.head.decode(self.outputs(log_mel))

    def losses(self, y: torch.Tensor, label_f0: torch.Tensor, label_voiced: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head's F0 term (named ``head.loss_name``: ``f0_l1`` in nats of Hz, ``f0_ce`` in nats;
        mean over labelled-voiced frames, 0 when none is voiced) and ``vuv_bce``, the voicing
        binary cross-entropy over every frame, of ``y = outputs(log_mel)`` against the labels
        ``label_f0 (batch, frames)`` Hz and ``label_voiced (batch, frames)`` in {0, 1}."""
        v = label_voiced > 0.5
        f0_term = self.head.f0_loss(y.float(), label_f0, v)
        vuv = torch.nn.functional.binary_cross_entropy_with_logits(y[:, self.head.vuv_channel].float(), label_voiced.float())
        return {self.head.loss_name: f0_term.mean() if f0_term.numel() else y.sum() * 0.0, "vuv_bce": vuv}

    def f0_hz(self, log_f0: torch.Tensor) -> torch.Tensor:
        """``exp(log_f0)`` clamped to ``[fmin, fmax]`` Hz."""
        return torch.exp(torch.clamp(log_f0, self.log_fmin, self.log_fmax))

