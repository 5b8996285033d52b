"""The training runner: :func:`train` = :func:`~melforge.core.experiment.build_experiment`, then
:func:`training_loop` (the optimiser config's RMSProp or Adam, per-tier gradient clipping,
validation, atomic and exactly resumable checkpoints), with a
:class:`~melforge.core.reporting.Reporter` and the final samples."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .checkpoint import LAST, CheckpointWriteError, load_checkpoint, save_checkpoint
from .crops import CropSampler, ValidationSet
from .device import Placement, place_experiment
from .divergence import DivergenceDetector
from .experiment import Experiment, build_experiment
from .multiscale import MultiscaleModel
from .optim import apply_optimizer_config, make_optimizer
from .distributed import SilentReporter
from .reporting import Reporter, log, write_metrics
from .run_dir import RunDirectoryBusy, check_resume, locked_run_dir, remove_stale_temp_files


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
    model: MultiscaleModel, valid: ValidationSet, batch_size: int, cond: torch.Tensor | None = None,
    *, placement: Placement | None = None,
) -> dict[int, float]:
    """Mean NLL of every tier, ``{g: nats per valid element of tier g}``, over every piece of
    ``valid`` (batched by length, padding not counted); ``cond: (pieces, C)`` aligned with
    ``valid.pieces``, or ``None``. With ``placement`` the batches run on its device and in its
    precision (the NLL itself in fp32), and data-parallel ranks share them (batch ``k`` on rank
    ``k mod world size``), summing totals and counts over the ranks: every rank returns the same."""
    placement = placement or Placement.local()
    group, device = placement.group, placement.device
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, model.n_tiers, dtype=torch.float64)  # [summed NLL, element count] per tier
    for k, (x, lengths, idx) in enumerate(valid.batches(batch_size)):
        if k % group.world_size != group.rank:
            continue
        z = cond[idx].to(device) if cond is not None else None
        lengths = lengths.to(device) if lengths is not None else None
        with placement.precision.autocast():
            sums = model.tier_nll_sums(x.to(device), z, None, lengths)
        for g, (total, count) in sums.items():
            totals[0, g - 1] += float(total)
            totals[1, g - 1] += count
    totals = group.sum(totals)
    model.train(was_training)
    return {g: float(totals[0, g - 1] / totals[1, g - 1]) for g in range(1, model.n_tiers + 1)}


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
    """Normalised training batches and the validation set of an experiment.

    Attributes:
        train: draws right-padded ``(batch, frames ≤ crop_frames, bins)`` batches with their
            lengths and speaker labels (bucketed by length).
        valid: every validation clip, in pieces of at most ``crop_frames`` frames.
        valid_cond: ``(pieces, speakers)`` one-hot speaker of each piece, or ``None``.
        crop_frames: the longest crop, in frames (``data.crop_frames``, a maximum).
    """

    train: CropSampler
    valid: ValidationSet
    valid_cond: torch.Tensor | None
    crop_frames: int

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "TrainingData":
        """Batches of ``exp``'s corpus, normalised with its normaliser (``cfg["data"]`` keys
        ``crop_frames``, ``min_frames``, ``buckets`` and ``valid_crops``; lengths are multiples
        of the model's time factor)."""
        corpus, normalizer, dcfg = exp.load_corpus(), exp.normalizer, exp.cfg["data"]
        crop_frames, multiple = int(dcfg["crop_frames"]), exp.model.schedule.time_factor
        min_frames = dcfg.get("min_frames")
        train = CropSampler(
            [normalizer.normalize(f) for f in corpus.train], crop_frames, multiple=multiple, min_frames=min_frames,
            buckets=int(dcfg.get("buckets", 8)), speakers=corpus.train_speakers,
        )
        cap = dcfg.get("valid_crops")
        valid = ValidationSet.build(
            [normalizer.normalize(f) for f in corpus.valid], crop_frames, multiple=multiple, min_frames=min_frames,
            max_pieces=None if cap is None else int(cap),
        )
        valid_cond = exp.speakers.one_hot([corpus.valid_speakers[k] for k in valid.sources]) if exp.speakers else None
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


def check_inverter(exp: Experiment) -> None:
    """The inverter that will turn the run's samples into audio accepts its representation: an
    inverter trained on one analysis (:meth:`melforge.core.inverter.Inverter.representation_config`)
    must get features of exactly that analysis. Checked before training, so a mismatch does not
    surface only after the run's last step.

    Raises:
        ValueError: names both representations and the ``inverter`` key.
    """
    if int(exp.cfg.get("sample", {}).get("count", 0)) <= 0:
        return
    wanted = exp.inverter.representation_config()
    if wanted is None:
        return
    have = {"name": exp.cfg["representation"]["name"], **exp.representation.config()}
    if dict(wanted) != have:
        raise ValueError(
            f"inverter: {exp.cfg['inverter'].get('name')} was trained on the representation {dict(wanted)}, but this run's "
            f"samples are {have}; set representation keys to match it, choose another inverter, or set sample.count=0"
        )


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

    ``device`` and ``precision`` say where and how the model runs (:mod:`melforge.core.device`,
    :mod:`melforge.core.precision`). Started by ``torchrun`` (or as a SLURM job step of several
    tasks) the processes train one model data-parallel (:mod:`melforge.core.distributed`):
    ``train.batch_size`` rows per rank, rank 0's ``run_dir``, and only rank 0 writes there.

    Returns:
        The metrics written to ``metrics.json`` (NLLs in nats per element, bits alongside); on
        ranks other than 0, the same NLLs (nothing is written).

    Raises:
        RunDirectoryBusy: another process is training in ``run_dir`` (names its PID).
        DeviceError, PrecisionError, LaunchError: a device that is not there, an unknown
            precision, an inconsistent launcher environment (named).
        ResumeMismatch: the checkpoint was trained with other architecture or data keys.
        TrainingDiverged: see :class:`TrainingDiverged` (nothing is written for that step).
        DatasetError, EntryConfigError, UnknownEntryError: bad data or config (named).
        ValueError: shapes that do not divide into the tiers (names ``data.crop_frames``,
            ``sample.frames`` or ``sample.prime_frames``).
    """
    with Placement.start(cfg) as placement, contextlib.ExitStack() as stack:
        group = placement.group
        run_dir = Path(group.broadcast(str(run_dir)))  # every rank trains into rank 0's directory
        busy = None
        if group.is_main:  # the lock is rank 0's; the others never touch the directory
            try:
                stack.enter_context(locked_run_dir(run_dir))
            except RunDirectoryBusy as exc:
                busy = exc
        else:
            group.quiet_logging()
        group.agree(busy)
        return _train_locked(cfg, run_dir, placement)


def _train_locked(cfg: dict[str, Any], run_dir: Path, placement: Placement) -> dict[str, Any]:
    group = placement.group
    stale = remove_stale_temp_files(run_dir) if group.is_main else []  # under the lock: their writers are dead
    if stale:
        log.warning(f"removed {len(stale)} temporary file(s) left by interrupted writes: "
                    f"{', '.join(str(p.relative_to(run_dir)) for p in stale)}")
    torch.set_num_threads(int(cfg.get("threads", 2)))
    ckpt_dir = run_dir / "checkpoints"
    resume = cfg["train"].get("resume", True) and (ckpt_dir / LAST).exists()
    state = load_checkpoint(ckpt_dir / LAST, map_location=placement.device) if resume else None
    optimizer_changes = check_resume(ckpt_dir / LAST, state["config"], cfg) if state is not None else []
    if group.is_main:
        _write_yaml(run_dir / "config.yaml", cfg)
    exp = group.main_first(lambda: build_experiment(cfg, state=state))  # rank 0 fills the feature cache
    check_shapes(exp)
    check_inverter(exp)
    if group.is_main:
        write_metrics(run_dir / "skipped.json", {"skipped": exp.load_corpus().skipped})  # every run, cache or not
    data = TrainingData.from_experiment(exp)
    place_experiment(exp, placement.device)  # the model on the device, samplers that run there
    optimizer = make_optimizer(exp.model.parameters(), cfg["optimizer"])
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        apply_optimizer_config(optimizer, cfg["optimizer"])
        placement.precision.load_state_dict(state.get("precision"))
        for change in optimizer_changes:
            log.warning(f"resuming with a changed {change} (the config's value is used)")
        log.info(f"resuming from {ckpt_dir / LAST} at step {int(state['step'])}")
    step = int(state["step"]) if state is not None else 0
    shapes = exp.model.schedule.shapes(data.crop_frames, exp.representation.n_bins)
    metrics = state.get("metrics", {}) if state else {}
    if group.is_main:
        reporter = Reporter(run_dir, shapes, exp.model.n_tiers, step, int(cfg["train"]["max_steps"]), metrics)
    else:
        reporter = SilentReporter(shapes, exp.model.n_tiers, metrics)
    try:
        end_step, recent, elapsed = training_loop(exp, data, optimizer, reporter, run_dir / "checkpoints", state, placement)
        if not group.is_main:
            return reporter.summary(recent, {"rank": group.rank})
        return finish(exp, data, reporter, run_dir, end_step, end_step - step, recent, elapsed, placement)
    finally:
        reporter.close()


def training_loop(
    exp: Experiment,
    data: TrainingData,
    optimizer: torch.optim.Optimizer,
    reporter: Reporter,
    ckpt_dir: Path,
    state: dict[str, Any] | None,
    placement: Placement | None = None,
) -> tuple[int, dict[str, list[float]], float]:
    """Update ``exp.model`` until ``train.max_steps``, validating (into ``reporter``) and
    checkpointing (into ``ckpt_dir``) on the way; ``state`` is the checkpoint resumed from.

    ``placement`` (default: one process on the CPU in fp32) gives the device, the precision
    and the data-parallel group. Every rank draws the step's whole batch of
    ``train.batch_size × world size`` rows and trains on its own slice; the NLL of each tier is
    its summed NLL over the rank's valid elements divided by the count over all ranks' (times
    the world size, which DDP's gradient average divides out), so the update equals one
    process's on the whole batch. Losses are averaged over the ranks before they are logged or
    checked, so every rank stops together; only rank 0 writes checkpoints.

    Returns:
        ``(final step, recent training NLLs per tier, seconds spent in this call)``.

    Raises:
        TrainingDiverged: a non-finite loss or gradient norm.
        CheckpointWriteError: a checkpoint could not be written (a full disk, named); the
            previous one is intact.
    """
    cfg, model = exp.cfg, exp.model
    placement = placement or Placement.local()
    group, device, precision = placement.group, placement.device, placement.precision
    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    batch_size, max_steps, log_every = int(tcfg["batch_size"]), int(tcfg["max_steps"]), int(tcfg["log_every"])
    trained = train_tiers(cfg, model.n_tiers)
    # tier_nll_sums, through DDP when there are several ranks (its backward averages the gradients)
    nll_sums = group.wrap(model, "tier_nll_sums", device, find_unused=len(trained) < model.n_tiers)
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
        reporter.validation(0, evaluate(model, data.valid, batch_size, data.valid_cond, placement=placement),
                            prefix="valid_nll_step0")
        reporter.image("data/valid_crop", exp.representation.to_image(exp.normalizer.denormalize(data.valid.pieces[0].numpy())), 0)

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
            "precision": precision.state_dict(),
        }

    reporter.metrics["train_frames_this_run"] = 0
    start_time = time.perf_counter()
    budget = tcfg.get("max_seconds")  # wall-clock budget of this call (equal-compute comparisons)
    model.train()
    try:
        while step < max_steps:
            batch = data.train.draw(batch_size * group.world_size, batch_generator(seed, step))  # the global batch
            reporter.metrics["train_frames_this_run"] += int(batch[1].sum())  # valid frames, padding excluded
            x, lengths, labels = group.rows(batch)  # this rank's rows
            cond = exp.speakers.one_hot(labels).to(device) if exp.speakers else None
            with precision.autocast():
                sums = nll_sums(x.to(device), cond, trained, lengths.to(device))  # {g: (summed NLL, count)}
            # (trained tiers, [summed NLL, valid elements]) over all ranks: one small all-reduce
            totals = group.sum(torch.tensor([[float(sums[g][0].detach()), float(sums[g][1])] for g in trained], dtype=torch.float64))
            reported = totals[:, 0] / totals[:, 1]  # per trained tier: nats per valid element of the global batch
            nlls = {g: sums[g][0] * (group.world_size / float(totals[k, 1])) for k, g in enumerate(trained)}
            loss = sum(nlls.values())
            loss_value = float(reported.sum())
            if not math.isfinite(loss_value):
                raise TrainingDiverged(_diverged_message(f"non-finite loss ({loss_value})", step, detector, ckpt_dir, saved_step))
            optimizer.zero_grad(set_to_none=True)
            precision.backward(loss)  # DDP all-reduces the gradients here
            precision.unscale(optimizer)
            grad_norms = {}
            for g in trained:  # each tier is clipped on its own: the tiers train independently
                grad_norms[g] = float(
                    torch.nn.utils.clip_grad_norm_(model.tiers[g - 1].parameters(), float(tcfg["grad_clip"]))
                )
                if not math.isfinite(grad_norms[g]) and not precision.skips_overflow:  # fp16: the scaler skips the step
                    raise TrainingDiverged(_diverged_message(
                        f"non-finite gradient norm of tier {g} ({grad_norms[g]})", step, detector, ckpt_dir, saved_step
                    ))
            verdict = detector.update(step + 1, loss_value)
            if verdict.diverged:
                raise TrainingDiverged(_diverged_message(verdict.reason, step, detector, ckpt_dir, saved_step))
            precision.step(optimizer)
            step += 1
            for k, g in enumerate(trained):
                recent[str(g)] = (recent.get(str(g), []) + [float(reported[k])])[-log_every:]
            reporter.train_step(step)
            last = step == max_steps or (budget is not None and time.perf_counter() - start_time >= float(budget))
            if budget is not None:
                last = bool(group.broadcast(last))  # rank 0's clock decides, so that every rank stops together
            if step % log_every == 0 or last:
                reporter.train_log(step, recent, grad_norms, optimizer.param_groups[0]["lr"])
            if step % int(tcfg["valid_every"]) == 0 or last:
                reporter.validation(step, evaluate(model, data.valid, batch_size, data.valid_cond, placement=placement))
            if step % int(tcfg["checkpoint_every"]) == 0 or last:
                if verdict.suspect:  # never promote a state that may be diverging to last.pt
                    log.warning(f"step {step}: checkpoint skipped, {verdict.reason}")
                else:
                    reporter.writer.flush()  # TensorBoard holds every point up to the checkpoint
                    failure = None
                    if group.is_main:  # rank 0 writes; the others learn whether it could
                        try:
                            path = save_checkpoint(ckpt_dir, step, checkpoint_state(), keep=int(tcfg.get("keep_checkpoints", 3)))
                            log.info(f"step {step}: wrote checkpoint {path} and {LAST}")
                        except CheckpointWriteError as exc:
                            held = f"step {saved_step}" if saved_step is not None else "nothing yet"
                            failure = CheckpointWriteError(f"training stopped at step {step}: {exc} (it holds {held})")
                            failure.__cause__ = exc
                    group.agree(failure)
                    saved_step = step
            if last:
                break
        if "valid_nll" not in reporter.metrics:  # resumed at max_steps: nothing trained in this call
            reporter.validation(step, evaluate(model, data.valid, batch_size, data.valid_cond, placement=placement))
    finally:
        reporter.bar.close()
    return step, recent, time.perf_counter() - start_time


def finish(
    exp: Experiment, data: TrainingData, reporter: Reporter, run_dir: Path, step: int, steps_run: int,
    recent: dict, elapsed: float, placement: Placement | None = None,
) -> dict[str, Any]:
    """Draw the final samples (``cfg["sample"]``, on ``placement``'s device), write
    ``metrics.json`` and return it (rank 0's work)."""
    placement = placement or Placement.local()
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
        "valid_crops": len(data.valid),
        "valid_frames": data.valid.frames,
        "train_seconds_this_run": elapsed,
        "device": str(placement.device),
        "precision": placement.precision.name,
        "ranks": placement.group.world_size,
        "train_elements_per_second": reporter.metrics.get("train_frames_this_run", 0)
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
