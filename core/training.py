"""The one training loop: :func:`train` runs any :class:`~melforge.core.learner.Learner` — a
likelihood model (MelNet, WaveNet), the phase-gradient vocoder, a GAN vocoder with two
optimisers — in a run directory.

The loop owns the run: the run-directory lock, exact resume and atomic checkpoints, the
divergence guard, the time budget and the log/validate/checkpoint cadence, device placement,
precision and data-parallel ranks (:class:`~melforge.core.device.Placement`), TensorBoard,
``train.log``, ``metrics.json`` and the :class:`~melforge.core.reporting.Reporter`. The
learner owns its data, batches, optimisers, steps and validation figures.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .config_schema import TrainApp, typed
from .checkpoint import LAST, CheckpointWriteError, load_checkpoint, save_checkpoint
from .device import Placement
from .divergence import DivergenceDetector, DivergenceVerdict
from .learner import Learner, OptimizerSpec
from .optim import apply_optimizer_config, make_optimizer, make_scheduler
from .reporting import NullWriter, Reporter, log, write_metrics
from .run_dir import ResumeMismatch, check_resume, config_changes, locked_run_dir, remove_stale_temp_files

#: ``build(cfg, state)``: the learner a config describes (``state``: the checkpoint resumed from, or ``None``).
LearnerFactory = Callable[[dict[str, Any], "dict[str, Any] | None"], Learner]


class TrainingDiverged(RuntimeError):
    """The loss rose far above its recent statistics, or the loss or a gradient norm became
    NaN or inf; no diverged state was checkpointed and the message names the last checkpoint
    written before the divergence began."""


def batch_generator(seed: int, step: int) -> torch.Generator:
    """The RNG for the batch of update ``step``: a pure function of (seed, step), so a resumed
    run draws exactly the batches an uninterrupted one would."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


def train(cfg: dict[str, Any], run_dir: str | Path, build: LearnerFactory) -> dict[str, Any]:
    """Train the learner ``build(cfg, state)`` into ``run_dir``: ``checkpoints/`` (``step_*.pt``
    and ``last.pt``), ``tensorboard/``, ``metrics.json``, ``config.yaml``, and what the
    learner's :meth:`~melforge.core.learner.Learner.finish` writes (a model's samples).

    If ``run_dir/checkpoints/last.pt`` exists and ``train.resume`` is true, training continues
    from it and ends at ``train.max_steps`` exactly as an uninterrupted run would (batches are a
    function of ``(seed, step)``; weights, every optimiser and schedule, the divergence
    statistics and the fp16 scaler are restored). Before anything in the directory is touched,
    the checkpoint's config is compared with ``cfg``: a changed architecture or data key is an
    error listing them; changed optimiser keys (``optimizer.lr``) are applied and logged. The
    run holds an exclusive lock on ``run_dir`` throughout.

    ``device`` and ``precision`` say where and how the learner runs. Started by ``torchrun`` (or
    as a SLURM job step of several tasks) the processes train data-parallel: ``train.batch_size``
    rows per rank, rank 0's ``run_dir``, and only rank 0 writes there.

    Returns:
        The metrics written to ``metrics.json`` (on ranks other than 0, the same figures;
        nothing is written).

    Raises:
        RunDirectoryBusy: another process is training in ``run_dir`` (names its PID).
        DeviceError, PrecisionError, LaunchError: a device that is not there, an unknown
            precision, an inconsistent launcher environment (named).
        ResumeMismatch: the checkpoint was trained with other architecture or data keys.
        TrainingDiverged: see :class:`TrainingDiverged` (nothing is written for that step).
        CheckpointWriteError: a checkpoint could not be written (the previous one is intact).
        DatasetError, EntryConfigError, UnknownEntryError, ValueError: bad data or config (named).
    """
    with Placement.start(cfg) as placement, contextlib.ExitStack() as stack:
        group = placement.group
        run_dir = Path(group.broadcast(str(run_dir)))  # every rank trains into rank 0's directory
        busy = None
        if group.is_main:  # the lock is rank 0's; the others never touch the directory
            try:
                stack.enter_context(locked_run_dir(run_dir))
            except Exception as exc:  # RunDirectoryBusy: every rank raises it together
                busy = exc
        else:
            group.quiet_logging()
        group.agree(busy)
        return _train_locked(cfg, run_dir, placement, build)


def _train_locked(cfg: dict[str, Any], run_dir: Path, placement: Placement, build: LearnerFactory) -> dict[str, Any]:
    group = placement.group
    stale = remove_stale_temp_files(run_dir) if group.is_main else []  # under the lock: their writers are dead
    if stale:
        log.warning(f"removed {len(stale)} temporary file(s) left by interrupted writes: "
                    f"{', '.join(str(p.relative_to(run_dir)) for p in stale)}")
    app = typed(TrainApp, cfg)  # the run's own keys, typed, with the schema's defaults
    torch.set_num_threads(app.threads)
    ckpt_dir = run_dir / "checkpoints"
    resume = app.train.resume and (ckpt_dir / LAST).exists()
    state = load_checkpoint(ckpt_dir / LAST, map_location=placement.device) if resume else None
    # a changed architecture or data key is refused before anything is built or written
    changes = check_resume(ckpt_dir / LAST, state["config"], cfg) if state is not None else []
    learner = group.main_first(lambda: _built(build, cfg, state))  # rank 0 fills the caches first
    if state is not None:
        _check_learner_keys(ckpt_dir / LAST, state["config"], cfg, learner)
    if group.is_main:
        _write_yaml(run_dir / "config.yaml", cfg)
        write_metrics(run_dir / "skipped.json", {"skipped": learner.skipped()})  # every run, cache or not
    if state is not None:
        learner.load_state(state)
    learner.place(placement)
    run = _Run(cfg, learner, placement, ckpt_dir, state)
    for change in changes:
        log.warning(f"resuming with a changed {change} (the config's value is used)")
    if state is not None:
        log.info(f"resuming from {ckpt_dir / LAST} at step {run.step}")
    try:
        elapsed = run.loop()
        if not group.is_main:
            return run.reporter.summary(run.recent)
        return _finish(run, run_dir, elapsed)
    finally:
        run.reporter.close()


def _built(build: LearnerFactory, cfg: dict[str, Any], state: dict[str, Any] | None) -> Learner:
    learner = build(cfg, state)
    learner.prepare()
    return learner


def _check_learner_keys(checkpoint: Path, saved: Mapping[str, Any], cfg: Mapping[str, Any], learner: Learner) -> None:
    """The sections the learner declares fixed (a trained inverter's own keys, except those that
    change only how it inverts) are the checkpoint's.

    Raises:
        ResumeMismatch: a fixed key differs (all of them listed).
    """
    fixed = [c for c in config_changes(saved, cfg, learner.fixed_sections) if c.split(":", 1)[0] not in learner.free_keys]
    if fixed:
        raise ResumeMismatch(
            f"cannot resume {checkpoint}: it was trained with another {learner.kind}; differing keys: "
            f"{'; '.join(fixed)}. Use a new hydra.run.dir, or train.resume=false to start over."
        )


class Optimizers:
    """The learner's optimisers and their schedules, built from its
    :class:`~melforge.core.learner.OptimizerSpec` list (restored from ``state`` when resuming;
    a checkpoint's ``optimizer`` key, written before optimisers had names, restores the first).

    Returns of :meth:`load` are the config changes applied to the resumed optimisers."""

    def __init__(self, specs: list[OptimizerSpec]):
        if not specs:
            raise ValueError("a learner declared no optimiser")
        self.specs = {s.name: s for s in specs}
        self.optimizers = {s.name: make_optimizer(s.parameters, s.config, key=f"optimizer ({s.name})") for s in specs}
        self.schedulers = {name: make_scheduler(opt, self.specs[name].config) for name, opt in self.optimizers.items()}

    def load(self, state: Mapping[str, Any]) -> list[str]:
        saved = state.get("optimizers") or {next(iter(self.optimizers)): state["optimizer"]}
        changes: list[str] = []
        for name, opt in self.optimizers.items():
            opt.load_state_dict(saved[name])
            if name in (state.get("schedulers") or {}):
                self.schedulers[name].load_state_dict(state["schedulers"][name])
            changed = apply_optimizer_config(opt, self.specs[name].config)
            changes += [f"{name} optimiser {k}: {a!r} → {b!r}" for k, (a, b) in changed.items()]
        return changes

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()}}

    def lrs(self) -> dict[str, float]:
        return {k: float(o.param_groups[0]["lr"]) for k, o in self.optimizers.items()}

    def advance(self, stepped: set[str]) -> None:
        """Step once the schedule of every optimiser that updated in this training step (a GAN's
        discriminator idle during a warm-up keeps its learning rate)."""
        for name, scheduler in self.schedulers.items():
            if name in stepped:
                scheduler.step()


class _Run:
    """One call of the loop: the learner, its optimisers, the reporter, the divergence guard and
    the step counter, restored from ``state`` when resuming."""

    def __init__(self, cfg: dict[str, Any], learner: Learner, placement: Placement, ckpt_dir: Path, state: dict | None):
        self.cfg, self.learner, self.placement, self.ckpt_dir = cfg, learner, placement, ckpt_dir
        app = typed(TrainApp, cfg)
        tcfg = self.tcfg = app.train
        self.seed = app.seed
        self.step = int(state["step"]) if state is not None else 0
        self.saved_step: int | None = self.step if state is not None else None  # step of checkpoints/last.pt
        self.optimizers = Optimizers(learner.optimizers())
        self.changes = self.optimizers.load(state) if state is not None else []
        if state is not None:
            placement.precision.load_state_dict(state.get("precision"))
        d = tcfg.divergence
        self.detector = DivergenceDetector(d.window, d.threshold, d.min_excess)
        if state is not None:
            self.detector.load_state_dict(state.get("divergence", {}))
        metrics = state.get("metrics", {}) if state else {}
        main = placement.group.is_main
        self.reporter = Reporter(
            ckpt_dir.parent, self.step, tcfg.max_steps, metrics, monitor=learner.monitor,
            units=learner.log_units(), writer=None if main else NullWriter(), show_bar=main,
            label=learner.monitor_label,
        )
        self.recent: dict[str, list[float]] = {k: list(v) for k, v in metrics.get("recent_train", {}).items()}
        self.grad_norms: dict[str, float] = {}
        self.stepped: set[str] = set()  # the optimisers updated in the current step

    # --- one update of one optimiser (what the learner's step calls) --------------------------
    def update(self, name: str, loss: torch.Tensor) -> dict[str, float]:
        """See :meth:`melforge.core.learner.StepContext.update`."""
        opt, spec, precision = self.optimizers.optimizers[name], self.optimizers.specs[name], self.placement.precision
        group = self.placement.group
        value = float(loss.detach()) if not group.active else float(group.mean(loss.detach().reshape(1))[0])
        if not math.isfinite(value):  # averaged over the ranks, so that every rank stops together
            raise TrainingDiverged(self.diverged(f"non-finite loss of the {name} optimiser ({value})"))
        opt.zero_grad(set_to_none=True)
        precision.backward(loss)  # DDP all-reduces the gradients here
        precision.unscale(opt)
        norms = {}
        for group_name, params in spec.groups().items():
            limit = float(spec.max_norm) if spec.max_norm is not None else math.inf
            norms[group_name] = float(torch.nn.utils.clip_grad_norm_(params, limit))
            if not math.isfinite(norms[group_name]) and not precision.skips_overflow:  # fp16: the scaler skips the step
                raise TrainingDiverged(self.diverged(f"non-finite gradient norm of {group_name} ({norms[group_name]})"))
        precision.step(opt)
        self.grad_norms.update(norms)
        self.stepped.add(name)
        return norms

    def diverged(self, reason: str) -> str:
        """The one-paragraph report of a divergence at update ``step + 1``."""
        onset = self.detector.last_healthy_step + 1
        if self.saved_step is not None:
            kept = f"the last checkpoint written before it, {self.ckpt_dir / LAST} (step {self.saved_step}), is intact"
        else:
            kept = "no checkpoint had been written before it"
        return (
            f"training diverged at step {self.step + 1}: {reason}; the divergence began at step {onset}, and {kept}. "
            "Lower optimizer.lr or train.grad_clip, or check the data for NaN/inf."
        )

    # --- the loop -------------------------------------------------------------------------
    def loop(self) -> float:
        """Update until ``train.max_steps`` (or ``train.max_seconds``), validating, logging and
        checkpointing on the way. Returns the seconds spent."""
        learner, group, tcfg = self.learner, self.placement.group, self.tcfg
        batch_size, max_steps = tcfg.batch_size, tcfg.max_steps
        if self.saved_step is None:
            self.reporter.validation(0, learner.validate(batch_size, self.placement), step0=True)
            if group.is_main:
                learner.on_start(self.reporter)
        self.reporter.metrics["train_frames_this_run"] = 0
        start, budget = time.perf_counter(), tcfg.max_seconds
        learner.module.train()
        try:
            while self.step < max_steps:
                batch = learner.draw(batch_size * group.world_size, batch_generator(self.seed, self.step))
                figures = self.one_step(group.rows(batch))
                last = self.step == max_steps or (budget is not None and time.perf_counter() - start >= float(budget))
                if budget is not None:
                    last = bool(group.broadcast(last))  # rank 0's clock decides, so that every rank stops together
                self.cadence(figures, last)
                if last:
                    break
            if f"valid_{learner.monitor}" not in self.reporter.metrics:  # resumed at max_steps: nothing trained
                self.reporter.validation(self.step, learner.validate(batch_size, self.placement))
        finally:
            self.reporter.bar.close()
        return time.perf_counter() - start

    def one_step(self, batch: Any) -> tuple[dict[str, float], DivergenceVerdict]:
        """The learner's step on this rank's rows, its figures averaged over the ranks and
        checked; returns ``(figures, divergence verdict)``."""
        self.grad_norms, self.stepped = {}, set()
        raw = self.learner.train_step(batch, self)
        names = sorted(raw)
        averaged = self.placement.group.mean(torch.tensor([float(raw[k]) for k in names], dtype=torch.float64))
        figures = {k: float(v) for k, v in zip(names, averaged)}
        value = figures[self.learner.monitor]
        if not math.isfinite(value):
            raise TrainingDiverged(self.diverged(f"non-finite loss ({value})"))
        verdict = self.detector.update(self.step + 1, value)
        if verdict.diverged:
            raise TrainingDiverged(self.diverged(verdict.reason))
        self.optimizers.advance(self.stepped)
        self.step += 1
        log_every = self.tcfg.log_every
        for k, v in figures.items():
            self.recent[k] = (self.recent.get(k, []) + [v])[-log_every:]
        self.reporter.train_step(self.step)
        return figures, verdict

    def cadence(self, stepped: tuple[dict[str, float], Any], last: bool) -> None:
        """Log, validate and checkpoint when their period (or the last step) comes."""
        _, verdict = stepped
        step, tcfg = self.step, self.tcfg
        if step % tcfg.log_every == 0 or last:
            means = {k: sum(v) / len(v) for k, v in self.recent.items() if v}
            self.reporter.train_log(step, means, self.grad_norms, self.optimizers.lrs())
        if step % tcfg.valid_every == 0 or last:
            self.reporter.validation(step, self.learner.validate(tcfg.batch_size, self.placement))
        if step % tcfg.checkpoint_every == 0 or last:
            if verdict.suspect:  # never promote a state that may be diverging to last.pt
                log.warning(f"step {step}: checkpoint skipped, {verdict.reason}")
            else:
                self.checkpoint()

    def checkpoint(self) -> None:
        """Write ``step_<n>.pt`` and ``last.pt`` (rank 0; every rank learns whether it could)."""
        self.reporter.writer.flush()  # TensorBoard holds every point up to the checkpoint
        failure = None
        if self.placement.group.is_main:
            try:
                path = save_checkpoint(self.ckpt_dir, self.step, self.state(), keep=self.tcfg.keep_checkpoints)
                log.info(f"step {self.step}: wrote checkpoint {path} and {LAST}")
            except CheckpointWriteError as exc:
                held = f"step {self.saved_step}" if self.saved_step is not None else "nothing yet"
                failure = CheckpointWriteError(f"training stopped at step {self.step}: {exc} (it holds {held})")
                failure.__cause__ = exc
        self.placement.group.agree(failure)
        self.saved_step = self.step

    def state(self) -> dict[str, Any]:
        """The checkpoint: plain data and tensors only (loaded with ``weights_only=True``)."""
        self.reporter.metrics["recent_train"] = self.recent
        return {
            "step": self.step,
            "model": self.learner.module.state_dict(),
            **self.optimizers.state_dict(),
            "config": self.cfg,
            "metrics": self.reporter.metrics,
            "divergence": self.detector.state_dict(),
            "precision": self.placement.precision.state_dict(),
            **self.learner.checkpoint_extras(),
        }


def _finish(run: _Run, run_dir: Path, elapsed: float) -> dict[str, Any]:
    """Write ``metrics.json`` (rank 0), then the learner's final work (a model's samples), then
    ``metrics.json`` again with its results: a run whose training finished keeps its metrics
    even when that work fails."""
    placement = run.placement
    out = {"steps": run.step, "trains": run.learner.kind}
    out.update(run.reporter.summary(run.recent))
    out.update({
        "train_seconds_this_run": elapsed,
        "device": str(placement.device),
        "precision": placement.precision.name,
        "ranks": placement.group.world_size,
        "parameters": sum(p.numel() for p in run.learner.module.parameters()),
    })
    out.update(run.learner.summary(out, elapsed))
    write_metrics(run_dir / "metrics.json", out)
    out.update(run.learner.finish(run_dir, run.reporter, run.step, placement))
    run.reporter.hparams(run.cfg, out)
    write_metrics(run_dir / "metrics.json", out)
    return out


def _write_yaml(path: Path, cfg: dict) -> None:
    from omegaconf import OmegaConf  # deferred: only the writing rank needs it

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
