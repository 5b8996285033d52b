"""The adversarial half of a GAN vocoder's training step, shared by every learner that trains a
generator against discriminators (the GAN vocoders' and the source-filter vocoders' when they
have discriminators): the discriminators' update on real and detached generated audio, then the
generator's adversarial and feature-matching terms (HiFi-GAN §2.4, eq. 5-6; MelGAN §2.3)."""

from __future__ import annotations

import torch

from melforge.core.learner import Placement, StepContext

from .losses import ADVERSARIAL, feature_matching_loss


class Adversary:
    """Discriminators, their loss pair and how feature matching reads them.

    Args:
        discriminator: module ``audio (batch, samples) →`` a judgement (one ``(score,
            features)`` per sub-discriminator, :mod:`.losses`).
        adversarial: an :data:`.losses.ADVERSARIAL` name (``lsgan`` or ``hinge``).
        feature_last: whether feature matching includes the score layer (HiFi-GAN yes, MelGAN no).
        optimizer: the name of the discriminators' optimiser in the learner's
            :class:`melforge.core.learner.OptimizerSpec` list.

    Raises:
        ValueError: an unknown ``adversarial`` (names the known ones).
    """

    def __init__(self, discriminator: torch.nn.Module, adversarial: str, feature_last: bool,
                 optimizer: str = "discriminator"):
        if adversarial not in ADVERSARIAL:
            raise ValueError(f"inverter.adversarial={adversarial!r}: expected one of {', '.join(ADVERSARIAL)}")
        self.discriminator, self.judge = discriminator, discriminator
        self.d_loss, self.g_loss = ADVERSARIAL[adversarial]
        self.feature_last, self.optimizer = bool(feature_last), optimizer

    def place(self, placement: Placement) -> None:
        """The discriminators on the device, judged through DDP when there are several ranks."""
        self.discriminator.to(placement.device)
        self.judge = placement.group.wrap(self.discriminator, "forward", placement.device, find_unused=False)

    def judge_both(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[list, list]:
        """The discriminators' judgements of ``real`` and ``fake (batch, samples)`` from one
        forward pass over both (one pass per backward, as data-parallel training needs)."""
        n = real.shape[0]
        judged = self.judge(torch.cat([real, fake]))
        return ([(s[:n], [f[:n] for f in fs]) for s, fs in judged],
                [(s[n:], [f[n:] for f in fs]) for s, fs in judged])

    def update_discriminator(self, real: torch.Tensor, fake: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """One step of the discriminators' optimiser on their loss of ``real`` and the detached
        ``fake (batch, samples)``; returns that loss (HiFi-GAN eq. 1, MelGAN eq. 1)."""
        with ctx.placement.precision.autocast():
            d_loss = self.d_loss(*self.judge_both(real, fake.detach()))
        ctx.update(self.optimizer, d_loss.float())
        return d_loss

    def generator_terms(self, real: torch.Tensor, fake: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """``(adversarial, feature matching)`` of ``fake`` against ``real (batch, samples)``,
        differentiable in ``fake`` (HiFi-GAN eq. 2 and 4; MelGAN eq. 2 and 4)."""
        with ctx.placement.precision.autocast():
            judged_real, judged = self.judge_both(real, fake)
        adversarial = self.g_loss(judged).float()
        return adversarial, feature_matching_loss(judged_real, judged, last=self.feature_last).float()
