"""The training runner: :func:`train` = :func:`~melforge.core.experiment.build_experiment`, then
:func:`training_loop` (the optimiser config's RMSProp or Adam, per-tier gradient clipping,
validation, atomic and exactly resumable checkpoints), with a
:class:`~melforge.core.reporting.Reporter` and the final samples."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .checkpoint import LAST, CheckpointWriteError, load_checkpoint, save_checkpoint
from .crops import CropSampler, fixed_crops
from .divergence import DivergenceDetector
from .experiment import Experiment, build_experiment
from .multiscale import MultiscaleModel
from .optim import apply_optimizer_config, make_optimizer
from .reporting import Reporter, log, write_metrics
from .run_dir import check_resume, locked_run_dir, remove_stale_temp_files


class TrainingDiverged(RuntimeError):
    """The loss rose far above its recent statistics, or the loss or a gradient norm became
    NaN or inf; no diverged state was checkpointed and the message names the last checkpoint
    written before the divergence began."""


def batch_generator(seed: int, step: int) -> torch.Generator:
    """The RNG for the batch of update ``step``: a pure function of (seed, step), so a resumed
    run draws exactly the batches an uninterrupted one would."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


@torch.no_grad()
def evaluate(
    model: MultiscaleModel, crops: torch.Tensor, batch_size: int, cond: torch.Tensor | None = None
) -> dict[int, float]:
    """Mean NLL of every tier, ``{g: nats per element of tier g}``, over
    ``crops: (n, frames, bins)`` (``cond: (n, C)`` aligned with them, or ``None``)."""
    was_training = model.training
    model.eval()
    totals: dict[int, float] = {}
    counts: dict[int, int] = {}
    for start in range(0, len(crops), batch_size):
        x = crops[start : start + batch_size]
        z = cond[start : start + batch_size] if cond is not None else None
        for g, lp in model.tier_log_probs(x, z).items():
            totals[g] = totals.get(g, 0.0) - float(lp.sum())
            counts[g] = counts.get(g, 0) + lp.numel()
    model.train(was_training)
    return {g: totals[g] / counts[g] for g in sorted(totals)}


def train_tiers(cfg: dict[str, Any], n_tiers: int) -> list[int]:
    """``cfg["tiers"]["train"]``: the 1-based tiers this run updates (default: all).

    Raises:
        ValueError: a tier outside ``1..n_tiers`` (names the key).
    """
    wanted = (cfg.get("tiers") or {}).get("train")
    if wanted is None:
        return list(range(1, n_tiers + 1))
    wanted = [wanted] if isinstance(wanted, int) else list(wanted)
    if not wanted or any(not isinstance(g, int) or not 1 <= g <= n_tiers for g in wanted):
        raise ValueError(f"tiers.train: expected tiers among 1..{n_tiers}, got {wanted!r}")
    return sorted(set(wanted))


@dataclass
class TrainingData:
    """Normalised training crops and the fixed validation crops of an experiment.

    Attributes:
        train: draws ``(batch, crop_frames, bins)`` crops with their speaker labels.
        valid: ``(n, crop_frames, bins)`` fixed validation crops.
        valid_cond: ``(n, speakers)`` their one-hot speakers, or ``None``.
        crop_frames: frames per crop.
    """

    train: CropSampler
    valid: torch.Tensor
    valid_cond: torch.Tensor | None
    crop_frames: int

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "TrainingData":
        """Crops of ``exp``'s corpus, normalised with its normaliser (``cfg["data"]`` keys
        ``crop_frames`` and ``valid_crops``)."""
        corpus, normalizer, dcfg = exp.load_corpus(), exp.normalizer, exp.cfg["data"]
        crop_frames = int(dcfg["crop_frames"])
        train = CropSampler([normalizer.normalize(f) for f in corpus.train], crop_frames, speakers=corpus.train_speakers)
        valid, sources = fixed_crops(
            [normalizer.normalize(f) for f in corpus.valid], crop_frames, int(dcfg["valid_crops"]), with_sources=True
        )
        valid_cond = exp.speakers.one_hot([corpus.valid_speakers[k] for k in sources]) if exp.speakers else None
        return cls(train, valid, valid_cond, crop_frames)


def check_shapes(exp: Experiment) -> None:
    """The crop and sample lengths divide into the model's tiers.

    Raises:
        ValueError: names ``data.crop_frames``, ``sample.frames`` or ``sample.prime_frames``.
    """
    schedule, bins, scfg = exp.model.schedule, exp.representation.n_bins, exp.cfg.get("sample", {})
    schedule.check(int(exp.cfg["data"]["crop_frames"]), bins, what="data.crop_frames")
    if int(scfg.get("count", 0)) > 0:
        check_sample_shape(exp.model, bins, int(scfg["frames"]), int(scfg.get("prime_frames", 0) or 0))


def check_sample_shape(model: MultiscaleModel, bins: int, frames: int, prime_frames: int) -> None:
    """``sample.frames`` and ``sample.prime_frames`` fit the model's tiers.

    Raises:
        ValueError: names the key and the factor it must be a multiple of.
    """
    model.schedule.check(frames, bins, what="sample.frames")
    if prime_frames % model.schedule.time_factor or prime_frames >= frames:
        raise ValueError(
            f"sample.prime_frames={prime_frames}: must be a multiple of {model.schedule.time_factor} and "
            f"less than sample.frames={frames}"
        )


def train(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train the model described by ``cfg`` (a resolved plain dict), writing into ``run_dir``:
    ``checkpoints/`` (``step_*.pt`` and ``last.pt``), ``tensorboard/``, ``metrics.json``,
    ``config.yaml`` and, if ``cfg["sample"]["count"] > 0``, ``samples/*.{png,wav,npy}``.

    A multiscale model (``tiers.layers`` with G entries, seed 000 §5) trains the tiers named in
    ``tiers.train`` (default all) on the same crops, each on its own NLL and with its own
    gradient clipping, so the tiers train independently; validation NLL is reported per tier
    (``valid_nll_tier<g>``) and for the whole spectrogram (``valid_nll``, eq. 10). With
    ``data.speaker_conditioning`` every tier is conditioned on a one-hot speaker vector (§4.3).

    If ``run_dir/checkpoints/last.pt`` exists and ``train.resume`` is true, training continues
    from it and ends at ``train.max_steps`` exactly as an uninterrupted run would. Before anything
    in the directory is touched, the checkpoint's config is compared with ``cfg``: a changed
    architecture or data key is an error listing them; changed optimiser keys (``optimizer.lr``)
    are applied and logged. ``config.yaml`` is written after that check. The run holds an
    exclusive lock on ``run_dir`` throughout.

    Returns:
        The metrics written to ``metrics.json`` (NLLs in nats per element, bits alongside).

    Raises:
        RunDirectoryBusy: another process is training in ``run_dir`` (names its PID).
        ResumeMismatch: the checkpoint was trained with other architecture or data keys.
        TrainingDiverged: see :class:`TrainingDiverged` (nothing is written for that step).
        DatasetError, EntryConfigError, UnknownEntryError: bad data or config (named).
        ValueError: shapes that do not divide into the tiers (names ``data.crop_frames``,
            ``sample.frames`` or ``sample.prime_frames``).
    """
    with locked_run_dir(run_dir) as run_dir:
        return _train_locked(cfg, run_dir)


def _train_locked(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    stale = remove_stale_temp_files(run_dir)  # under the lock: their writers are dead
    if stale:
        log.warning(f"removed {len(stale)} temporary file(s) left by interrupted writes: "
                    f"{', '.join(str(p.relative_to(run_dir)) for p in stale)}")
    torch.set_num_threads(int(cfg.get("threads", 2)))
    ckpt_dir = run_dir / "checkpoints"
    resume = cfg["train"].get("resume", True) and (ckpt_dir / LAST).exists()
    state = load_checkpoint(ckpt_dir / LAST) if resume else None
    optimizer_changes = check_resume(ckpt_dir / LAST, state["config"], cfg) if state is not None else []
    _write_yaml(run_dir / "config.yaml", cfg)
    exp = build_experiment(cfg, state=state)
    check_shapes(exp)
    write_metrics(run_dir / "skipped.json", {"skipped": exp.load_corpus().skipped})  # every run, cache or not
    data = TrainingData.from_experiment(exp)
    optimizer = make_optimizer(exp.model.parameters(), cfg["optimizer"])
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        apply_optimizer_config(optimizer, cfg["optimizer"])
        for change in optimizer_changes:
            log.warning(f"resuming with a changed {change} (the config's value is used)")
        log.info(f"resuming from {ckpt_dir / LAST} at step {int(state['step'])}")
    step = int(state["step"]) if state is not None else 0
    shapes = exp.model.schedule.shapes(data.crop_frames, exp.representation.n_bins)
    reporter = Reporter(
        run_dir, shapes, exp.model.n_tiers, step, int(cfg["train"]["max_steps"]), state.get("metrics", {}) if state else {}
    )
    try:
        end_step, recent, elapsed = training_loop(exp, data, optimizer, reporter, run_dir / "checkpoints", state)
        return finish(exp, data, reporter, run_dir, end_step, end_step - step, recent, elapsed)
    finally:
        reporter.close()


def training_loop(
    exp: Experiment,
    data: TrainingData,
    optimizer: torch.optim.Optimizer,
    reporter: Reporter,
    ckpt_dir: Path,
    state: dict[str, Any] | None,
) -> tuple[int, dict[str, list[float]], float]:
    """Update ``exp.model`` until ``train.max_steps``, validating (into ``reporter``) and
    checkpointing (into ``ckpt_dir``) on the way; ``state`` is the checkpoint resumed from.

    Returns:
        ``(final step, recent training NLLs per tier, seconds spent in this call)``.

    Raises:
        TrainingDiverged: a non-finite loss or gradient norm.
        CheckpointWriteError: a checkpoint could not be written (a full disk, named); the
            previous one is intact.
    """
    cfg, model = exp.cfg, exp.model
    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    batch_size, max_steps, log_every = int(tcfg["batch_size"]), int(tcfg["max_steps"]), int(tcfg["log_every"])
    trained = train_tiers(cfg, model.n_tiers)
    step = int(state["step"]) if state is not None else 0
    saved_step: int | None = step if state is not None else None  # step of checkpoints/last.pt
    dcfg = tcfg.get("divergence") or {}
    detector = DivergenceDetector(
        int(dcfg.get("window", 50)), float(dcfg.get("threshold", 10.0)), float(dcfg.get("min_excess", 5.0))
    )
    if state is not None:
        detector.load_state_dict(state.get("divergence", {}))
    recent: dict[str, list[float]] = {k: list(v) for k, v in reporter.metrics.get("recent_train_nll", {}).items()}
    if state is None:
        reporter.validation(0, evaluate(model, data.valid, batch_size, data.valid_cond), prefix="valid_nll_step0")
        reporter.image("data/valid_crop", exp.representation.to_image(exp.normalizer.denormalize(data.valid[0].numpy())), 0)

    def checkpoint_state() -> dict[str, Any]:
        reporter.metrics["recent_train_nll"] = recent
        return {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": cfg,
            "normalizer": exp.normalizer.state_dict(),
            "representation": exp.representation.config(),
            "speakers": exp.speakers.labels if exp.speakers else None,
            "metrics": reporter.metrics,
            "divergence": detector.state_dict(),
        }

    start_time = time.perf_counter()
    budget = tcfg.get("max_seconds")  # wall-clock budget of this call (equal-compute comparisons)
    model.train()
    try:
        while step < max_steps:
            x, labels = data.train.draw(batch_size, batch_generator(seed, step))
            cond = exp.speakers.one_hot(labels) if exp.speakers else None
            nlls = model.tier_nlls(x, cond, trained)  # {g: nats per element of tier g}
            loss = sum(nlls.values())
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise TrainingDiverged(_diverged_message(f"non-finite loss ({loss_value})", step, detector, ckpt_dir, saved_step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norms = {}
            for g in trained:  # each tier is clipped on its own: the tiers train independently
                grad_norms[g] = float(
                    torch.nn.utils.clip_grad_norm_(model.tiers[g - 1].parameters(), float(tcfg["grad_clip"]))
                )
                if not math.isfinite(grad_norms[g]):
                    raise TrainingDiverged(_diverged_message(
                        f"non-finite gradient norm of tier {g} ({grad_norms[g]})", step, detector, ckpt_dir, saved_step
                    ))
            verdict = detector.update(step + 1, loss_value)
            if verdict.diverged:
                raise TrainingDiverged(_diverged_message(verdict.reason, step, detector, ckpt_dir, saved_step))
            optimizer.step()
            step += 1
            for g, value in nlls.items():
                recent[str(g)] = (recent.get(str(g), []) + [value.item()])[-log_every:]
            reporter.train_step(step)
            last = step == max_steps or (budget is not None and time.perf_counter() - start_time >= float(budget))
            if step % log_every == 0 or last:
                reporter.train_log(step, recent, grad_norms, optimizer.param_groups[0]["lr"])
            if step % int(tcfg["valid_every"]) == 0 or last:
                reporter.validation(step, evaluate(model, data.valid, batch_size, data.valid_cond))
            if step % int(tcfg["checkpoint_every"]) == 0 or last:
                if verdict.suspect:  # never promote a state that may be diverging to last.pt
                    log.warning(f"step {step}: checkpoint skipped, {verdict.reason}")
                else:
                    reporter.writer.flush()  # TensorBoard holds every point up to the checkpoint
                    try:
                        path = save_checkpoint(ckpt_dir, step, checkpoint_state(), keep=int(tcfg.get("keep_checkpoints", 3)))
                        log.info(f"step {step}: wrote checkpoint {path} and {LAST}")
                    except CheckpointWriteError as exc:
                        held = f"step {saved_step}" if saved_step is not None else "nothing yet"
                        raise CheckpointWriteError(f"training stopped at step {step}: {exc} (it holds {held})") from exc
                    saved_step = step
            if last:
                break
        if "valid_nll" not in reporter.metrics:  # resumed at max_steps: nothing trained in this call
            reporter.validation(step, evaluate(model, data.valid, batch_size, data.valid_cond))
    finally:
        reporter.bar.close()
    return step, recent, time.perf_counter() - start_time


def finish(
    exp: Experiment, data: TrainingData, reporter: Reporter, run_dir: Path, step: int, steps_run: int,
    recent: dict, elapsed: float,
) -> dict[str, Any]:
    """Draw the final samples (``cfg["sample"]``), write ``metrics.json`` and return it."""
    import numpy as np
    import soundfile

    from .samples import render_samples

    cfg = exp.cfg
    scfg = cfg.get("sample", {})
    corpus = exp.load_corpus()
    shapes = exp.model.schedule.shapes(data.crop_frames, exp.representation.n_bins)
    out = {"steps": step, "tiers": exp.model.n_tiers, "tiers_trained": train_tiers(cfg, exp.model.n_tiers),
           "tier_shapes": [list(s) for s in shapes]}
    out.update(reporter.summary(recent, {
        "units": "NLL in nats (and bits) per element of the normalised features (a spectrogram bin, or a sample "
        "of a waveform representation); valid_nll and train_nll are over the whole spectrogram (the sum over "
        "tiers, eq. 10), *_tier<g> per element of tier g",
        "speakers": exp.speakers.labels if exp.speakers else None,
        "samplers": [type(s).__name__ for s in exp.samplers],
        "train_clips": len(corpus.train),
        "valid_clips": len(corpus.valid),
        "valid_crops": int(data.valid.shape[0]),
        "train_seconds_this_run": elapsed,
        "train_elements_per_second": steps_run * int(cfg["train"]["batch_size"]) * data.crop_frames
        * exp.representation.n_bins / max(elapsed, 1e-9),
    }))
    if int(scfg.get("count", 0)) > 0:
        prime, prime_speaker = None, None
        prime_frames = int(scfg.get("prime_frames", 0) or 0)
        if prime_frames:
            prime, prime_speaker = exp.prime(prime_frames, scfg.get("prime_audio"))
        rendered = render_samples(
            exp.model, exp.samplers, exp.representation, exp.normalizer, exp.inverter, run_dir / "samples",
            count=int(scfg["count"]), frames=int(scfg["frames"]),
            temperature=scfg["temperature"], seed=int(scfg.get("seed", cfg.get("seed", 0))),
            speakers=exp.speakers, speaker=scfg.get("speaker") or prime_speaker, prime=prime,
        )
        out["samples"] = [r.summary() for r in rendered]
        for k, r in enumerate(rendered):
            reporter.image(f"samples/{k}", exp.representation.to_image(np.load(r.npy)), step)
            audio, sr = soundfile.read(r.wav, dtype="float32")  # the WAV as written, no second inversion
            reporter.audio(f"samples/{k}", audio, sr, step)
    reporter.hparams(cfg, out)
    write_metrics(run_dir / "metrics.json", out)
    return out


def _diverged_message(reason: str, step: int, detector: DivergenceDetector, ckpt_dir: Path, saved_step: int | None) -> str:
    """The one-paragraph report of a divergence at update ``step + 1``."""
    onset = detector.last_healthy_step + 1
    if saved_step is not None:
        kept = f"the last checkpoint written before it, {ckpt_dir / LAST} (step {saved_step}), is intact"
    else:
        kept = "no checkpoint had been written before it"
    return (
        f"training diverged at step {step + 1}: {reason}; the divergence began at step {onset}, and {kept}. "
        "Lower optimizer.lr or train.grad_clip, or check the data for NaN/inf."
    )


def _write_yaml(path: Path, cfg: dict) -> None:
    from omegaconf import OmegaConf

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
