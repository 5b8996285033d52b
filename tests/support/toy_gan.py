"""A toy adversarial learner with two optimisers, living in the tests (not in core): it shows that
a GAN vocoder needs no change in ``melforge.core`` — the one training loop drives its
discriminator and generator updates, checkpoints both optimisers and schedules, resumes exactly
and runs data-parallel.

The generator maps noise ``z: (batch, 4)`` to points ``(batch, 2)``; the discriminator scores
points; the data are a fixed Gaussian blob. Least-squares GAN losses (Mao et al. 2017).

Run as a script (``python toy_gan.py RUN_DIR MAX_STEPS [SLOW_SECONDS]``, also under torchrun), it
trains into ``RUN_DIR``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

import torch
from torch import nn

from melforge.core.learner import Learner, OptimizerSpec, Placement, StepContext
from melforge.core.training import train


class ToyGan(Learner):
    """Generator and discriminator of a 2-D toy GAN; ``slow`` seconds of sleep per step (so a
    test can kill a run mid-training)."""

    monitor = "d_loss"
    kind = "toy_gan"

    def __init__(self, cfg: Mapping[str, Any], slow: float = 0.0):
        self.cfg, self.slow = cfg, slow
        torch.manual_seed(int(cfg.get("seed", 0)))
        self.net = nn.ModuleDict({
            "generator": nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)),
            "discriminator": nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)),
        })
        self.g, self.d = self.net["generator"], self.net["discriminator"]

    @property
    def module(self) -> nn.Module:
        return self.net

    def prepare(self) -> None:
        gen = torch.Generator().manual_seed(123)
        self.data = torch.randn(512, 2, generator=gen) * 0.3 + torch.tensor([1.0, -2.0])
        self.valid = torch.randn(64, 4, generator=gen), torch.randn(64, 2, generator=gen) * 0.3 + torch.tensor([1.0, -2.0])

    def place(self, placement: Placement) -> None:
        self.net.to(placement.device)
        self.g_forward = placement.group.wrap(self.g, "forward", placement.device, find_unused=False)
        self.d_forward = placement.group.wrap(self.d, "forward", placement.device, find_unused=False)

    def optimizers(self) -> list[OptimizerSpec]:
        opt = self.cfg["optimizer"]
        return [
            OptimizerSpec("discriminator", list(self.d.parameters()), opt["discriminator"], max_norm=10.0),
            OptimizerSpec("generator", list(self.g.parameters()), opt["generator"], max_norm=10.0),
        ]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z: (batch, 4), real: (batch, 2))``, a pure function of ``generator``."""
        idx = torch.randint(0, len(self.data), (batch_size,), generator=generator)
        return torch.randn(batch_size, 4, generator=generator), self.data[idx]

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx: StepContext) -> dict[str, float]:
        if self.slow:
            time.sleep(self.slow)
        z, real = batch
        with torch.no_grad():
            fake = self.g_forward(z)
        scores = self.d_forward(torch.cat([real, fake]))  # one forward per update under DDP
        d_loss = ((scores[: len(real)] - 1) ** 2).mean() + (scores[len(real) :] ** 2).mean()
        ctx.update("discriminator", d_loss)  # the discriminator first, then the generator
        g_loss = ((self.d_forward(self.g_forward(z)) - 1) ** 2).mean()
        ctx.update("generator", g_loss)
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach())}

    @torch.no_grad()
    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        z, real = self.valid
        fake = self.g(z)
        d_loss = ((self.d(real) - 1) ** 2).mean() + (self.d(fake) ** 2).mean()
        return {"d_loss": float(d_loss), "mean_error": float((fake.mean(0) - real.mean(0)).norm())}


def config(max_steps: int) -> dict[str, Any]:
    """A run config of the toy: AdamW for both, the discriminator's lr decaying per step, the
    generator's warming up over 3 steps."""
    adamw = {"name": "adamw", "lr": 2e-3, "beta1": 0.8, "beta2": 0.99}
    return {
        "seed": 7, "threads": 1, "device": "cpu", "precision": "fp32",
        "optimizer": {"discriminator": {**adamw, "schedule": {"gamma": 0.99}},
                      "generator": {**adamw, "schedule": {"warmup_steps": 3}}},
        "train": {"max_steps": max_steps, "batch_size": 8, "log_every": 1, "valid_every": 2, "checkpoint_every": 1,
                  "keep_checkpoints": 10, "resume": True, "grad_clip": 10.0},
    }


def main(argv: list[str]) -> None:
    run_dir, max_steps = argv[0], int(argv[1])
    slow = float(argv[2]) if len(argv) > 2 else 0.0
    train(config(max_steps), run_dir, lambda cfg, state: ToyGan(cfg, slow))


if __name__ == "__main__":
    main(sys.argv[1:])
