"""Training an inverter that has parameters (``melforge-train`` with ``trains: inverter``, e.g.
``experiment=pg_vocoder_tiny``): the same run directory, lock, checkpoints, exact resume,
divergence guard, TensorBoard, ``metrics.json`` and ``train.log`` as the model runner
(:mod:`melforge.core.training`), around an :class:`InverterLearner` that the inverter supplies
(:meth:`melforge.core.inverter.Inverter.learner`).

The run's ``dataset`` is read at the ``representation``'s rate, silence is trimmed as
``data.trim_db`` says, and clips are split into train and valid by the hash of their id
(:func:`melforge.core.features.in_valid_split`, ``data.valid_fraction``). The learner analyses
them, draws batches, and returns named loss terms (``"loss"`` is the one minimised).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import LAST, CheckpointWriteError, load_checkpoint, save_checkpoint
from .divergence import DivergenceDetector
from .features import in_valid_split
from .optim import apply_optimizer_config, make_optimizer
from .reporting import Reporter, log, write_metrics
from .run_dir import ResumeMismatch, check_resume, config_changes, locked_run_dir, remove_stale_temp_files

#: Values of the top-level config key ``trains``: what a ``melforge-train`` run fits.
TRAINS = ("model", "inverter")


class InverterLearner(ABC):
    """What the runner needs from an inverter with parameters.

    The runner calls :meth:`prepare` once with the split audio, then :meth:`draw` and
    :meth:`losses` every step; :attr:`module` holds every trained parameter (and the buffers
    the inverter needs at inference, e.g. statistics of the training set).
    """

    @property
    @abstractmethod
    def module(self) -> torch.nn.Module:
        """The trained network (its ``state_dict`` is the checkpoint's ``model``)."""

    @abstractmethod
    def prepare(self, train: list[np.ndarray], valid: list[np.ndarray], crop_frames: int, valid_crops: int) -> None:
        """Analyse the clips (each ``(samples,)`` float32 at the representation's rate), fit the
        training-set statistics into :attr:`module`, and cut the fixed validation crops.

        Raises:
            ValueError: no clip is ``crop_frames`` frames long (names ``data.crop_frames``).
        """

    @abstractmethod
    def draw(self, batch_size: int, generator: torch.Generator) -> Any:
        """A random training batch, a pure function of ``generator`` (so resuming is exact)."""

    @abstractmethod
    def valid_batches(self, batch_size: int) -> Iterable[Any]:
        """The fixed validation crops, in batches."""

    @abstractmethod
    def losses(self, batch: Any) -> dict[str, torch.Tensor]:
        """Scalar loss terms of a batch; ``"loss"`` is their weighted sum, the one minimised."""

    @abstractmethod
    def checkpoint_extras(self) -> dict[str, Any]:
        """Plain data the trained inverter needs besides the weights (stored in every checkpoint
        next to ``model``): at least ``"normalizer"`` (the input statistics). The runner adds
        ``"representation"`` (``{"name", <its keys>}``: the analysis the inverter was trained on)."""


def train_inverter(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train the inverter of ``cfg`` (a resolved plain dict with ``trains: inverter``) into
    ``run_dir``: ``checkpoints/`` (``step_*.pt``, ``last.pt``), ``tensorboard/``,
    ``metrics.json``, ``config.yaml``, ``skipped.json``; it logs to ``melforge.train``.

    Resuming from ``run_dir/checkpoints/last.pt`` (``train.resume``) continues to
    ``train.max_steps`` exactly as an uninterrupted run: batches are a function of
    ``(seed, step)``. The run directory is locked throughout.

    Returns:
        The metrics written to ``metrics.json``: ``valid_loss_step0``, ``valid_loss``,
        ``train_loss`` and each term (``valid_<term>``, ``train_<term>``), ``parameters``, …

    Raises:
        RunDirectoryBusy: another process trains in ``run_dir``.
        ResumeMismatch: the checkpoint was trained with other data, representation or inverter
            keys (lists them).
        ValueError: the inverter has no parameters (names ``inverter.name``); see the learner.
        TrainingDiverged: a non-finite or exploding loss (nothing is written for that step).
    """
    with locked_run_dir(run_dir) as run_dir:
        return _train_locked(cfg, run_dir)


def _train_locked(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from .atomic import atomic_path
    from .plugins import registries

    stale = remove_stale_temp_files(run_dir)
    if stale:
        log.warning(f"removed {len(stale)} temporary file(s) left by interrupted writes")
    torch.set_num_threads(int(cfg.get("threads", 2)))
    ckpt_dir = run_dir / "checkpoints"
    resume = cfg["train"].get("resume", True) and (ckpt_dir / LAST).exists()
    state = load_checkpoint(ckpt_dir / LAST) if resume else None
    optimizer_changes: list[str] = []
    if state is not None:
        optimizer_changes = check_resume(ckpt_dir / LAST, state["config"], cfg)
        changed = config_changes(state["config"], cfg, ("inverter", "trains"))
        free = {f"inverter.{key}" for key in registries().inverter.build(cfg["inverter"]).inference_keys}
        changed = [c for c in changed if c.split(":", 1)[0] not in free]
        if changed:
            raise ResumeMismatch(
                f"cannot resume {ckpt_dir / LAST}: it was trained with another inverter; differing keys: "
                f"{'; '.join(changed)}. Use a new hydra.run.dir, or train.resume=false to start over."
            )
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))

    regs = registries()
    representation = regs.representation.build(cfg["representation"])
    dataset = regs.dataset.build(cfg["dataset"])
    seed = int(cfg.get("seed", 0))
    torch.manual_seed(seed)
    inverter = regs.inverter.build(cfg["inverter"])
    learner = inverter.learner(representation)
    if learner is None:
        raise ValueError(
            f"inverter.name={cfg['inverter']['name']!r}: this inverter has no parameters to train "
            "(trains: inverter needs a trainable inverter, e.g. pg_vocoder)"
        )
    dcfg = cfg["data"]
    train_audio, valid_audio, skipped = split_clips(dataset, representation, float(dcfg["valid_fraction"]), dcfg.get("trim_db"))
    write_metrics(run_dir / "skipped.json", {"skipped": skipped})
    valid_crops = dcfg.get("valid_crops")  # null: every crop of every validation clip
    learner.prepare(train_audio, valid_audio, int(dcfg["crop_frames"]), int(valid_crops) if valid_crops else 1 << 30)
    module = learner.module
    if state is not None:
        module.load_state_dict(state["model"])
    optimizer = make_optimizer(module.parameters(), cfg["optimizer"])
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        apply_optimizer_config(optimizer, cfg["optimizer"])
        for change in optimizer_changes:
            log.warning(f"resuming with a changed {change} (the config's value is used)")
        log.info(f"resuming from {ckpt_dir / LAST} at step {int(state['step'])}")
    step = int(state["step"]) if state is not None else 0
    tcfg = cfg["train"]
    reporter = Reporter(run_dir, [(1, 1)], 1, step, int(tcfg["max_steps"]), state.get("metrics", {}) if state else {})
    try:
        extras = {"representation": {"name": cfg["representation"]["name"], **representation.config()},
                  **learner.checkpoint_extras()}
        step, recent, elapsed = _loop(cfg, learner, optimizer, reporter, ckpt_dir, state, extras)
        out = {
            "steps": step,
            "trains": "inverter",
            "inverter": cfg["inverter"]["name"],
            "units": "loss terms of the inverter's learner (pg_vocoder: seed 002 eq. 7-11; log-magnitude in nats, "
                     "offsets in bins and frames), means over the fixed validation crops / the last log_every steps",
            "parameters": sum(p.numel() for p in module.parameters()),
            "train_clips": len(train_audio),
            "valid_clips": len(valid_audio),
            "train_seconds_this_run": elapsed,
        }
        out.update({k: v for k, v in reporter.metrics.items() if k.startswith("valid_")})
        out.update({f"train_{k}": float(np.mean(v)) for k, v in recent.items() if v})
        write_metrics(run_dir / "metrics.json", out)
        return out
    finally:
        reporter.close()


def split_clips(dataset, representation, valid_fraction: float, trim_db: float | None) -> tuple[list, list, list]:
    """The dataset's audio at the representation's rate, trimmed and split by clip id.

    Returns:
        ``(train, valid, skipped)``: lists of ``(samples,)`` float32 waveforms, and
        ``{"id", "reason"}`` for clips left out (silent, shorter than one hop after trimming).

    Raises:
        ValueError: the split leaves train or valid empty (says how many clips there were).
    """
    import librosa

    train, valid, skipped = [], [], []
    for clip in dataset.clips(representation.sr):
        audio = np.asarray(clip.audio, dtype=np.float32)
        if not audio.size or not np.abs(audio).max() > 0:
            skipped.append({"id": clip.id, "reason": "digital silence"})
            continue
        if trim_db is not None:
            audio, _ = librosa.effects.trim(audio, top_db=float(trim_db))
        if len(audio) < representation.hop_length:
            skipped.append({"id": clip.id, "reason": "shorter than one frame after trimming"})
            continue
        (valid if in_valid_split(clip.id, valid_fraction) else train).append(audio)
    if not train or not valid:
        raise ValueError(
            f"data.valid_fraction={valid_fraction}: the split of {len(train) + len(valid)} clips left "
            f"{len(train)} train and {len(valid)} valid clips; both must be non-empty"
        )
    return train, valid, skipped


@torch.no_grad()
def evaluate(learner: InverterLearner, batch_size: int) -> dict[str, float]:
    """Mean of every loss term over the fixed validation crops (weighted by batch size)."""
    module = learner.module
    was_training = module.training
    module.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in learner.valid_batches(batch_size):
        n = len(batch)
        for k, v in learner.losses(batch).items():
            totals[k] = totals.get(k, 0.0) + float(v) * n
        count += n
    module.train(was_training)
    return {k: v / count for k, v in totals.items()}


def _record_validation(reporter: Reporter, step: int, terms: Mapping[str, float], prefix: str) -> None:
    bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
    if bad:
        from .reporting import NonFiniteMetric

        raise NonFiniteMetric(f"{prefix} at step {step} is not finite ({bad}); nothing was written for this step")
    for k, v in terms.items():
        base, _, suffix = prefix.partition("_loss")  # valid_loss_step0 → valid_<term>_step0
        key = prefix if k == "loss" else f"{base}_{k}{suffix}"
        reporter.metrics[key] = v
        reporter.writer.add_scalar(f"valid/{k}", v, step)
    log.info(f"step {step}: valid loss {terms['loss']:.4f} ("
             + ", ".join(f"{k} {v:.4f}" for k, v in terms.items() if k != "loss") + ")")


def _loop(
    cfg: dict[str, Any], learner: InverterLearner, optimizer: torch.optim.Optimizer, reporter: Reporter,
    ckpt_dir: Path, state: dict[str, Any] | None, extras: dict[str, Any],
) -> tuple[int, dict[str, list[float]], float]:
    """Update until ``train.max_steps`` (or ``train.max_seconds``), validating, logging and
    checkpointing as the model runner does. Returns ``(step, recent train terms, seconds)``."""
    from .training import TrainingDiverged, _diverged_message, batch_generator

    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    batch_size, max_steps, log_every = int(tcfg["batch_size"]), int(tcfg["max_steps"]), int(tcfg["log_every"])
    module = learner.module
    step = int(state["step"]) if state is not None else 0
    saved_step: int | None = step if state is not None else None
    dcfg = tcfg.get("divergence") or {}
    detector = DivergenceDetector(int(dcfg.get("window", 50)), float(dcfg.get("threshold", 10.0)), float(dcfg.get("min_excess", 5.0)))
    if state is not None:
        detector.load_state_dict(state.get("divergence", {}))
    recent: dict[str, list[float]] = {k: list(v) for k, v in reporter.metrics.get("recent_train", {}).items()}
    if state is None:
        _record_validation(reporter, 0, evaluate(learner, batch_size), "valid_loss_step0")

    def checkpoint_state() -> dict[str, Any]:
        reporter.metrics["recent_train"] = recent
        return {
            "step": step, "model": module.state_dict(), "optimizer": optimizer.state_dict(), "config": cfg,
            "metrics": reporter.metrics, "divergence": detector.state_dict(), **extras,
        }

    start = time.perf_counter()
    budget = tcfg.get("max_seconds")
    module.train()
    try:
        while step < max_steps:
            terms = learner.losses(learner.draw(batch_size, batch_generator(seed, step)))
            loss = terms["loss"]
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(_diverged_message(f"non-finite loss ({value})", step, detector, ckpt_dir, saved_step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), float(tcfg["grad_clip"])))
            if not math.isfinite(grad_norm):
                raise TrainingDiverged(_diverged_message(f"non-finite gradient norm ({grad_norm})", step, detector, ckpt_dir, saved_step))
            verdict = detector.update(step + 1, value)
            if verdict.diverged:
                raise TrainingDiverged(_diverged_message(verdict.reason, step, detector, ckpt_dir, saved_step))
            optimizer.step()
            step += 1
            for k, v in terms.items():
                recent[k] = (recent.get(k, []) + [float(v.detach())])[-log_every:]
            reporter.train_step(step)
            last = step == max_steps or (budget is not None and time.perf_counter() - start >= float(budget))
            if step % log_every == 0 or last:
                means = {k: float(np.mean(v)) for k, v in recent.items()}
                lr = optimizer.param_groups[0]["lr"]
                log.info(f"step {step}: train loss {means['loss']:.4f} ("
                         + ", ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "loss")
                         + f"), lr {lr:.3g}, grad norm {grad_norm:.3g}")
                for k, v in means.items():
                    reporter.writer.add_scalar(f"train/{k}", v, step)
                reporter.writer.add_scalar("train/lr", lr, step)
                reporter.writer.add_scalar("train/grad_norm", grad_norm, step)
            if step % int(tcfg["valid_every"]) == 0 or last:
                _record_validation(reporter, step, evaluate(learner, batch_size), "valid_loss")
            if step % int(tcfg["checkpoint_every"]) == 0 or last:
                if verdict.suspect:
                    log.warning(f"step {step}: checkpoint skipped, {verdict.reason}")
                else:
                    reporter.writer.flush()
                    try:
                        path = save_checkpoint(ckpt_dir, step, checkpoint_state(), keep=int(tcfg.get("keep_checkpoints", 3)))
                        log.info(f"step {step}: wrote checkpoint {path} and {LAST}")
                    except CheckpointWriteError as exc:
                        held = f"step {saved_step}" if saved_step is not None else "nothing yet"
                        raise CheckpointWriteError(f"training stopped at step {step}: {exc} (it holds {held})") from exc
                    saved_step = step
            if last:
                break
        if "valid_loss" not in reporter.metrics:  # resumed at max_steps: nothing trained in this call
            _record_validation(reporter, step, evaluate(learner, batch_size), "valid_loss")
    finally:
        reporter.bar.close()
    return step, recent, time.perf_counter() - start
