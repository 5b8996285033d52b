"""The F0 estimator's output heads: how its last 1×1 convolution's channels become an F0 per frame,
and the loss that trains them against pyin labels. The voicing logit is one more channel in both.

- :class:`RegressionHead`: one channel of log-F0 around the range's geometric centre, trained by
  an L1 on log-F0 (nats) in voiced frames.
- :class:`PitchBinHead`: CREPE's output (Kim et al. 2018, §2.1): a distribution over pitch bins
  spaced ``bin_cents`` apart on a log-frequency axis from ``fmin``, trained towards a Gaussian-blurred
  one-hot of the label (σ = 25 cents), decoded as the probability-weighted mean of the bins within
  ±4 of the most likely one. CREPE uses a binary cross-entropy per bin over 360 bins of 20 cents;
  here it is the softmax cross-entropy against the normalised Gaussian target, over the bins of
  ``[fmin, fmax]``.

Both map ``y (batch, channels, frames)`` → ``(log_f0 (batch, frames) nats of Hz, vuv_logit
(batch, frames))`` with :meth:`decode` (the voicing logit is channel ``vuv_channel``), and score
``y`` against labels with :meth:`f0_loss`.
"""

from __future__ import annotations

import math

import torch


class RegressionHead(torch.nn.Module):
    """Channel 0: log-F0 relative to ``log sqrt(fmin · fmax)``; channel 1: the voicing logit.

    Args:
        fmin, fmax: the F0 range (Hz).
    """

    loss_name = "f0_l1"
    vuv_channel = 1

    def __init__(self, fmin: float, fmax: float):
        super().__init__()
        self.outputs = 2
        self.centre = 0.5 * (math.log(fmin) + math.log(fmax))

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y (batch, 2, frames)`` → ``(log_f0 (batch, frames), vuv_logit (batch, frames))``."""
        return self.centre + y[:, 0], y[:, self.vuv_channel]

    def f0_loss(self, y: torch.Tensor, label_f0: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
        """Per voiced frame, |log_f0 − log label_f0| (nats); ``label_f0 (batch, frames)`` Hz,
        ``voiced (batch, frames)`` bool selects the frames."""
        return (self.decode(y)[0] - torch.log(label_f0)).abs()[voiced]


class PitchBinHead(torch.nn.Module):
    """Channel 0: the voicing logit; channels ``1 … bins``: logits of pitch bins
    ``fmin · 2^(k · bin_cents / 1200)``, ``k = 0 … bins − 1``, the last at or above ``fmax``.

    Args:
        fmin, fmax: the F0 range (Hz).
        bin_cents: the bins' spacing (CREPE: 20 cents).
        sigma_cents: the standard deviation of the Gaussian target around the label (CREPE: 25).
        window: bins on each side of the most likely one in the decoding average (CREPE: 4).

    Raises:
        ValueError: a spacing, σ or window that is not positive (names ``inverter.estimator_bin_cents``
            for the spacing).
    """

    loss_name = "f0_ce"
    vuv_channel = 0

    def __init__(self, fmin: float, fmax: float, bin_cents: float = 20.0, sigma_cents: float = 25.0, window: int = 4):
        super().__init__()
        if bin_cents <= 0 or sigma_cents <= 0 or window < 1:
            raise ValueError(f"inverter.estimator_bin_cents={bin_cents}: expected > 0 (σ {sigma_cents} > 0, window {window} ≥ 1)")
        self.log_fmin, self.sigma, self.window = math.log(fmin), float(sigma_cents), int(window)
        bins = int(math.ceil(1200.0 * math.log2(fmax / fmin) / bin_cents)) + 1
        self.outputs = 1 + bins
        self.register_buffer("centres", torch.arange(bins, dtype=torch.float32) * float(bin_cents), persistent=False)

    def cents(self, f0_hz: torch.Tensor) -> torch.Tensor:
        """``f0_hz`` (any shape) in cents above ``fmin``."""
        return 1200.0 * (torch.log(f0_hz) - self.log_fmin) / math.log(2.0)

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y (batch, 1 + bins, frames)`` → ``(log_f0 (batch, frames), vuv_logit (batch, frames))``:
        the weighted mean, in cents, of the bins within ``window`` of the most likely one."""
        p = torch.softmax(y[:, 1:].float(), dim=1)  # (batch, bins, frames)
        peak = p.argmax(dim=1, keepdim=True)
        near = (torch.arange(p.shape[1], device=y.device)[None, :, None] - peak).abs() <= self.window
        w = p * near
        cents = (w * self.centres[None, :, None]).sum(1) / w.sum(1).clamp(min=1e-12)
        return self.log_fmin + cents * (math.log(2.0) / 1200.0), y[:, self.vuv_channel]

    def f0_loss(self, y: torch.Tensor, label_f0: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
        """Per voiced frame, the cross-entropy (nats) of the bins' softmax against the normalised
        Gaussian (σ ``sigma_cents``) around ``label_f0 (batch, frames)`` Hz; ``voiced (batch, frames)``
        bool selects the frames."""
        log_p = torch.log_softmax(y[:, 1:].float(), dim=1).transpose(1, 2)[voiced]  # (voiced frames, bins)
        target = torch.exp(-0.5 * ((self.centres - self.cents(label_f0[voiced])[:, None]) / self.sigma) ** 2)
        target = target / target.sum(1, keepdim=True).clamp(min=1e-12)
        return -(target * log_p).sum(1)


#: The values of ``inverter.estimator_head``.
HEADS = ("regression", "bins")


def build_head(name: str, fmin: float, fmax: float, bin_cents: float = 20.0) -> torch.nn.Module:
    """The head ``name`` (:data:`HEADS`) for the F0 range ``[fmin, fmax]`` Hz (``bin_cents``: the
    pitch bins' spacing, ``bins`` only).

    Raises:
        ValueError: an unknown name or a bad spacing (names ``inverter.estimator_head`` /
            ``inverter.estimator_bin_cents``).
    """
    if name not in HEADS:
        raise ValueError(f"inverter.estimator_head={name!r}: expected one of {', '.join(HEADS)}")
    return PitchBinHead(fmin, fmax, bin_cents) if name == "bins" else RegressionHead(fmin, fmax)
