"""A learner's contract with the one training loop (:class:`melforge.core.learner.Learner`):
a step moves only what its optimisers own, a resumed run is the uninterrupted one bit for bit,
and a batch is a pure function of its generator."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melforge.core.checkpoint import LAST, load_checkpoint
from melforge.core.device import Placement
from melforge.core.learner import Learner
from melforge.core.training import LearnerFactory, _Run, batch_generator, train

from .compare import first_difference

#: Checkpoint keys compared first, in this order (the rest follow sorted).
FIRST = ("step", "model", "optimizers", "optimizer", "schedulers")
#: Checkpoint keys a resumed run may hold differently: its config (``max_steps``) and its
#: metrics (timings, the figures of each call).
UNCOMPARED = ("config", "metrics")


@dataclass
class LearnerReport:
    """What :func:`check_learner` found.

    Attributes:
        optimizers: optimiser name → parameters (of ``learner.module``) it owns.
        moved: optimiser name → how many of them one step changed.
        fixed: names of the parameters no optimiser owns (unchanged by the step).
        updated: the optimisers the step updated, in order (``ctx.update`` calls).
        compared: checkpoint keys found identical after a straight and a resumed run.
    """

    optimizers: dict[str, int] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)


def _run_config(cfg: Mapping[str, Any], max_steps: int, every: int) -> dict[str, Any]:
    """``cfg`` training ``max_steps`` steps, logging, validating and checkpointing every ``every``."""
    out = copy.deepcopy(dict(cfg))
    out["train"] = {**out["train"], "max_steps": max_steps, "log_every": every, "valid_every": every,
                    "checkpoint_every": every, "resume": True, "max_seconds": None}
    return out


def _owners(run: _Run, learner: Learner) -> dict[str, set[str]]:
    """Optimiser name → names (in ``learner.module``) of the parameters it owns.

    Raises:
        AssertionError: an optimiser owns a parameter outside ``learner.module`` (it would not
            be checkpointed, so a resumed run would lose it).
    """
    names = {id(p): n for n, p in learner.module.named_parameters()}
    owners: dict[str, set[str]] = {}
    for opt, spec in run.optimizers.specs.items():
        outside = [tuple(p.shape) for p in spec.parameters if id(p) not in names]
        if outside:
            raise AssertionError(
                f"{type(learner).__name__}: optimiser {opt!r} owns {len(outside)} parameter(s) outside learner.module "
                f"(shapes {outside[:3]}): they are not checkpointed, so a resumed run would lose them"
            )
        owners[opt] = {names[id(p)] for p in spec.parameters}
    return owners


class _RecordingRun(_Run):
    """The loop's run object, recording the optimisers the learner's step updates (in order)
    and refusing a name it did not declare."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.updated: list[str] = []

    def update(self, name: str, loss: torch.Tensor) -> dict[str, float]:
        if name not in self.optimizers.specs:
            raise AssertionError(
                f"{type(self.learner).__name__}.train_step updates optimiser {name!r}, but optimizers() declares "
                f"only {list(self.optimizers.specs)}"
            )
        self.updated.append(name)
        return super().update(name, loss)


def _check_monitor(who: str, what: str, figures: Mapping[str, float], monitor: str) -> None:
    if monitor not in figures:
        raise AssertionError(f"{who}.{what} returned {sorted(figures)}, without its monitor {monitor!r}")


def _step_once(run: _RecordingRun, learner: Learner, placement: Placement, batch_size: int) -> None:
    """Validate (the loop's step 0), then one step on a batch the loop would draw first."""
    who = type(learner).__name__
    _check_monitor(who, "validate", learner.validate(batch_size, placement), learner.monitor)
    learner.module.train()
    group = placement.group
    batch = learner.draw(batch_size * group.world_size, batch_generator(run.seed, 0))
    try:
        run.one_step(group.rows(batch))
    except KeyError as exc:  # the loop reads figures[monitor] from the step's figures
        if exc.args == (learner.monitor,):
            raise AssertionError(f"{who}.train_step's figures lack its monitor {learner.monitor!r}") from exc
        raise
    order = list(dict.fromkeys(run.updated))
    declared = [name for name in run.optimizers.specs if name in order]
    if order != declared:
        raise AssertionError(f"{who}.train_step first updates {order}; optimizers() must list them in that order")


def check_one_step(build: LearnerFactory, cfg: Mapping[str, Any], run_dir: Path) -> LearnerReport:
    """One step through the loop's own run object (:class:`melforge.core.training._Run`: its
    optimisers, ``ctx.update``, the divergence guard) changes only parameters its declared
    optimisers own, and some of them.

    Also asserted: every optimiser's parameters belong to ``learner.module``; ``validate`` and
    ``train_step`` return the learner's ``monitor``; ``train_step`` updates only declared
    optimisers, first in the order :meth:`~melforge.core.learner.Learner.optimizers` lists them.

    Args:
        build: the learner factory (``build(cfg, None)``), as :func:`~melforge.core.training.train` takes.
        cfg: the run config (``train``, ``optimizer``, ``seed``, ``device``, ``precision`` …).
        run_dir: where the run's reporter writes (TensorBoard).

    Returns:
        A :class:`LearnerReport` without ``compared``.

    Raises:
        AssertionError: a parameter no optimiser owns changed (named), no owned parameter
            changed, or another of the properties above fails.
    """
    cfg = _run_config(cfg, 1, 1)
    learner = build(cfg, None)
    learner.prepare()
    who = type(learner).__name__
    with Placement.start(cfg) as placement:
        learner.place(placement)
        run = _RecordingRun(cfg, learner, placement, Path(run_dir) / "checkpoints", None)
        try:
            owners = _owners(run, learner)
            before = {n: p.detach().clone() for n, p in learner.module.named_parameters()}
            _step_once(run, learner, placement, int(cfg["train"]["batch_size"]))
        finally:
            run.reporter.close()
    after = dict(learner.module.named_parameters())
    changed = {n for n, p in before.items() if not torch.equal(p, after[n].detach())}
    owned = set().union(*owners.values())
    stray = sorted(changed - owned)
    if stray:
        raise AssertionError(f"{who}: one step changed parameters that no optimiser owns: {stray[:5]}")
    if not changed:
        raise AssertionError(f"{who}: one step changed none of the parameters its optimisers own")
    return LearnerReport(
        optimizers={k: len(v) for k, v in owners.items()}, moved={k: len(v & changed) for k, v in owners.items()},
        fixed=sorted(set(before) - owned), updated=run.updated,
    )


def check_resume(build: LearnerFactory, cfg: Mapping[str, Any], run_root: Path, steps: int) -> list[str]:
    """``steps`` steps straight and ``steps / 2`` then a resume to ``steps`` (both through
    :func:`melforge.core.training.train`) end in the same checkpoint: every weight, optimiser
    and schedule state, the divergence statistics and the learner's extras bit for bit.

    Args:
        build, cfg: as :func:`check_one_step`.
        run_root: a directory for the two runs (``straight/`` and ``resumed/``, new).
        steps: an even number of steps, at least 2.

    Returns:
        The checkpoint keys compared.

    Raises:
        AssertionError: the first difference (its path in the checkpoint).
        ValueError: an odd or too small ``steps``; a run directory that exists already.
    """
    if steps < 2 or steps % 2:
        raise ValueError(f"check_resume: steps must be even and >= 2, got {steps}")
    straight, resumed = Path(run_root) / "straight", Path(run_root) / "resumed"
    for d in (straight, resumed):
        if d.exists():
            raise ValueError(f"check_resume: {d} exists; give a new directory (a run there would resume)")
    half = steps // 2
    train(_run_config(cfg, steps, half), straight, build)
    train(_run_config(cfg, half, half), resumed, build)
    halfway = load_checkpoint(resumed / "checkpoints" / LAST)
    if int(halfway["step"]) != half:
        raise AssertionError(f"the first half stopped at step {halfway['step']}, expected {half}")
    train(_run_config(cfg, steps, half), resumed, build)
    a, b = (load_checkpoint(d / "checkpoints" / LAST) for d in (straight, resumed))
    keys = sorted((k for k in set(a) | set(b) if k not in UNCOMPARED), key=lambda k: (k not in FIRST, FIRST.index(k) if k in FIRST else 0, k))
    found = first_difference({k: a.get(k) for k in keys}, {k: b.get(k) for k in keys})
    if found:
        raise AssertionError(f"{steps} steps straight and {half} + a resume to {steps} differ at {found}")
    return keys


def _check_rows(who: str, batch: Any, batch_size: int) -> None:
    """Every field of ``batch`` (a tuple of per-row fields, or one tensor) has ``batch_size`` rows."""
    fields = batch if isinstance(batch, tuple) else (batch,)
    for k, f in enumerate(fields):
        if len(f) != batch_size:
            raise AssertionError(f"{who}.draw({batch_size}) returned {len(f)} rows in field {k}; the loop shares rows out")


def check_draw(learner: Learner, batch_size: int, seed: int = 0) -> None:
    """``learner.draw`` is a pure function of its generator: the same seed gives the same batch
    after a draw with another seed and with torch's and numpy's global generators reseeded; and
    every field has ``batch_size`` rows.

    Args:
        learner: a prepared learner.
        batch_size: rows to draw.
        seed: the generator's seed.

    Raises:
        AssertionError: the batches differ (where), or a field has another number of rows.
    """
    who = type(learner).__name__
    torch.manual_seed(1)
    np.random.seed(1)
    first = learner.draw(batch_size, torch.Generator().manual_seed(seed))
    _check_rows(who, first, batch_size)
    learner.draw(batch_size, torch.Generator().manual_seed(seed + 1))
    torch.manual_seed(2)
    np.random.seed(2)
    again = learner.draw(batch_size, torch.Generator().manual_seed(seed))
    found = first_difference(first, again, "batch")
    if found:
        raise AssertionError(f"{who}.draw is not a pure function of its generator: {found}")


def check_learner(build: LearnerFactory, cfg: Mapping[str, Any], run_root: str | Path, *, steps: int = 2) -> LearnerReport:
    """Assert that the learner ``build(cfg, state)`` keeps its contract with the one training loop.

    1. :func:`check_one_step`: one step through the loop's own run object changes only
       parameters of ``learner.module`` that its declared optimisers own (every other parameter
       bit-identical), and some of them.
    2. :func:`check_resume`: ``steps`` steps straight equal ``steps / 2`` steps and a resume to
       ``steps`` with :func:`melforge.core.training.train`, every checkpointed tensor bit for bit.
    3. :func:`check_draw`: ``draw`` is a pure function of its generator.

    Args:
        build: the learner factory :func:`~melforge.core.training.train` takes
            (``build(cfg, state)``; ``state`` is the checkpoint resumed from, or ``None``).
        cfg: a run config small enough for seconds (its ``train`` section gives ``batch_size``;
            ``max_steps`` and the cadence keys are set here); ``device: cpu`` and
            ``threads: 1`` keep it deterministic.
        run_root: an empty directory (``tmp_path``) for the runs.
        steps: steps of the straight run (even, >= 2).

    Returns:
        A :class:`LearnerReport`.

    Raises:
        AssertionError: the first failed check, with its message.
        ValueError: an odd or too small ``steps``.
    """
    if steps < 2 or steps % 2:
        raise ValueError(f"check_learner: steps must be even and >= 2, got {steps}")
    run_root = Path(run_root)
    report = check_one_step(build, cfg, run_root / "one_step")
    report.compared = check_resume(build, cfg, run_root, steps)
    learner = build(_run_config(cfg, steps, steps), None)
    learner.prepare()
    check_draw(learner, int(cfg["train"]["batch_size"]), seed=int(cfg.get("seed", 0)))
    return report
