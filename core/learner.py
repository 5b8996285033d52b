"""The contract between the training loop and what it trains.

:func:`melforge.core.training.train` owns the run: the run-directory lock, exact resume, atomic
checkpoints, the divergence guard, the time budget and the log/validate/checkpoint cadence,
device placement, precision and data-parallel ranks, TensorBoard, ``train.log``,
``metrics.json`` and the :class:`~melforge.core.reporting.Reporter`. A :class:`Learner` owns
what is trained: its data, its batches, its optimisers (one or several, each with its own
parameters, learning-rate schedule and gradient-clipping groups), one training step (which may
update several optimisers in turn, as a GAN updates its discriminator and then its generator),
its validation figures and its plain-data checkpoint extras.

A likelihood model (MelNet, WaveNet: :class:`melforge.core.model_learner.ModelLearner`), the
phase-gradient vocoder and a GAN vocoder are all learners; the loop never looks at which.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch


@dataclass
class OptimizerSpec:
    """One optimiser a learner declares.

    Attributes:
        name: how the learner names it in :meth:`StepContext.update` and in logs
            (``"model"``, ``"generator"``, ``"discriminator"``).
        parameters: the parameters it updates.
        config: its config section: ``name`` (an optimiser of
            :data:`melforge.core.optim.OPTIMIZERS`), its hyperparameters (``lr`` …) and an
            optional ``schedule`` (``{"gamma": per-step decay of ExponentialLR,
            "warmup_steps": linear warm-up}``).
        clip_groups: ``{group name: parameters}`` clipped each on its own to ``max_norm``
            (MelNet clips every tier separately); empty: one group of all ``parameters``.
        max_norm: the gradient-norm clipping threshold; ``None``: norms are measured, not clipped.
    """

    name: str
    parameters: list[torch.nn.Parameter]
    config: Mapping[str, Any]
    clip_groups: dict[str, list[torch.nn.Parameter]] = field(default_factory=dict)
    max_norm: float | None = None

    def groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The clipping groups (``{name: parameters}``; one group named after the optimiser by default)."""
        return self.clip_groups or {self.name: list(self.parameters)}


class Placement(Protocol):
    """Where a learner runs (:class:`melforge.core.device.Placement`): ``device``,
    ``precision`` (autocast, scaled backward) and ``group`` (data-parallel ranks: ``rank``,
    ``world_size``, ``rows``, ``wrap``, ``sum``, ``mean``, ``broadcast``)."""

    device: torch.device
    precision: Any
    group: Any


class StepContext(Protocol):
    """What the loop hands :meth:`Learner.train_step`.

    Attributes:
        step: the update being made (0-based: the step count before it).
        placement: device, precision and ranks.
    """

    step: int
    placement: Placement

    def update(self, name: str, loss: torch.Tensor) -> dict[str, float]:
        """Zero the gradients of optimiser ``name``, back-propagate ``loss`` (scaled under
        fp16; averaged over the ranks by DDP), clip each of its groups and step it.

        Returns:
            ``{clip group: gradient norm before clipping}``.

        Raises:
            TrainingDiverged: a non-finite gradient norm (outside fp16's skipped overflows).
        """


class Learner(ABC):
    """Something the training loop trains.

    The loop calls, in order: :meth:`prepare` (rank 0 first, so that it fills caches),
    :meth:`load_state` when resuming, :meth:`place`, :meth:`optimizers`, then every step
    :meth:`draw` and :meth:`train_step`, and every ``train.valid_every`` steps
    :meth:`validate`; :meth:`checkpoint_extras` goes into every checkpoint and :meth:`finish`
    runs once on rank 0 after ``metrics.json`` is written.

    Attributes:
        monitor: the name of the figure (in :meth:`train_step`'s and :meth:`validate`'s
            results) that the divergence guard watches and that "best" ranks, lower is better
            (``"nll"`` for a likelihood model, ``"loss"`` for a vocoder).
        monitor_label: how log lines name it (``"NLL"``).
        kind: what the run fits, for ``metrics.json`` and reports (``"model"``, ``"inverter"``).
        fixed_sections: config sections, besides the architecture and data sections every run
            fixes, that a resumed run may not change (a trained inverter's ``inverter``).
        free_keys: keys under ``fixed_sections`` that may change all the same (``inverter.checkpoint``).
    """

    monitor: str = "loss"
    monitor_label: str = "loss"
    kind: str = "model"
    fixed_sections: tuple[str, ...] = ()
    free_keys: frozenset[str] = frozenset()

    @property
    @abstractmethod
    def module(self) -> torch.nn.Module:
        """Every trained parameter and every buffer the result needs (one module; a GAN holds
        its generator and discriminators as children). Its ``state_dict`` is the checkpoint's
        ``model``."""

    @abstractmethod
    def prepare(self) -> None:
        """Load and analyse the data, fit statistics, cut validation crops.

        Raises:
            ValueError, DatasetError: data that cannot train this learner (named).
        """

    def skipped(self) -> list[dict]:
        """Clips :meth:`prepare` left out, ``{"id", "reason"}`` each (written to ``skipped.json``)."""
        return []

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint written by this learner (default: the weights of ``state["model"]``)."""
        self.module.load_state_dict(state["model"])

    def place(self, placement: Placement) -> None:
        """Move to ``placement.device`` and wrap what runs forward for data-parallel training
        (``placement.group.wrap``). Default: the module is moved."""
        self.module.to(placement.device)

    @abstractmethod
    def optimizers(self) -> list[OptimizerSpec]:
        """The optimisers, in the order :meth:`train_step` first uses them."""

    @abstractmethod
    def draw(self, batch_size: int, generator: torch.Generator) -> Any:
        """A random training batch of ``batch_size`` rows, a pure function of ``generator`` (so
        resuming is exact); a tuple of per-row fields or one tensor, whose rows the loop shares
        out over the ranks."""

    @abstractmethod
    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, float]:
        """One update on this rank's rows of ``batch``, through ``ctx.update`` for every
        optimiser it steps.

        Returns:
            Named scalar figures of the step (must contain :attr:`monitor`), averaged over the
            ranks where the learner needs exact global figures (the loop averages them again,
            which changes nothing for values that agree).
        """

    @abstractmethod
    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        """Named figures over the fixed validation set (must contain :attr:`monitor`); every
        rank returns the same."""

    def checkpoint_extras(self) -> dict[str, Any]:
        """Plain data stored next to the weights in every checkpoint (statistics, geometry)."""
        return {}

    def summary(self, metrics: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        """Facts for ``metrics.json`` (clips, units, derived figures such as bits), given the
        figures recorded so far and the seconds this call trained."""
        return {}

    def on_start(self, reporter: Any) -> None:
        """Called once before the first step of a fresh run (e.g. an image of a validation crop)."""

    def finish(self, run_dir: Path, reporter: Any, step: int, placement: Placement) -> dict[str, Any]:
        """Work after training on rank 0 (samples, audio), its results for ``metrics.json``."""
        return {}

    def log_units(self) -> str:
        """The unit of :attr:`monitor` in log lines (``"nats/element"``)."""
        return ""


def parameters_of(modules: Iterable[torch.nn.Module]) -> list[torch.nn.Parameter]:
    """Every parameter of ``modules`` that requires a gradient, each once."""
    seen: dict[int, torch.nn.Parameter] = {}
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                seen.setdefault(id(p), p)
    return list(seen.values())
