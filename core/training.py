"""The training runner: RMSProp (seed 000 Appendix A), clipping, validation, atomic and exactly
resumable checkpoints, progress bar, TensorBoard, and the final samples."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .atomic import atomic_path
from .checkpoint import LAST, load_checkpoint, save_checkpoint
from .crops import CropSampler, fixed_crops
from .experiment import build_model
from .features import FeatureCorpus
from .model import nats_to_bits
from .multiscale import MultiscaleModel
from .normalization import Normalizer
from .plugins import registries
from .speakers import SpeakerVocabulary


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or inf; the last good checkpoint is untouched."""


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


def overall_nll(per_tier: dict[int, float], shapes: list[tuple[int, int]]) -> float:
    """Per-tier NLLs (nats per element of each tier) → nats per element of the spectrogram made
    of those tiers: ``Σ_g n_g·NLL_g / Σ_g n_g`` (the log-likelihood is a sum over tiers, eq. 10)."""
    sizes = {g: shapes[g - 1][0] * shapes[g - 1][1] for g in per_tier}
    return sum(per_tier[g] * sizes[g] for g in per_tier) / sum(sizes.values())


def make_optimizer(model: torch.nn.Module, train_cfg: dict) -> torch.optim.Optimizer:
    """RMSProp with the paper's learning rate 1e-4 and momentum 0.9 (seed 000 Appendix A)."""
    return torch.optim.RMSprop(
        model.parameters(),
        lr=float(train_cfg["lr"]),
        momentum=float(train_cfg["momentum"]),
        alpha=float(train_cfg.get("alpha", 0.99)),
        eps=float(train_cfg.get("eps", 1e-8)),
    )


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
    from it and ends at ``train.max_steps`` exactly as an uninterrupted run would.

    Returns:
        The metrics written to ``metrics.json`` (NLLs in nats per element, bits alongside).

    Raises:
        TrainingDiverged: a non-finite loss or gradient norm (nothing is written for that step).
        DatasetError, EntryConfigError, UnknownEntryError: bad data or config (named).
        ValueError: shapes that do not divide into the tiers (names ``data.crop_frames``,
            ``sample.frames`` or ``sample.prime_frames``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg, dcfg, scfg = cfg["train"], cfg["data"], cfg.get("sample", {})
    seed = int(cfg.get("seed", 0))
    torch.set_num_threads(int(cfg.get("threads", 2)))
    _write_yaml(run_dir / "config.yaml", cfg)

    regs = registries()
    representation = regs.representation.build(cfg["representation"])
    inverter = regs.inverter.build(cfg["inverter"])
    corpus = FeatureCorpus.build(
        regs.dataset.build(cfg["dataset"]),
        representation,
        valid_fraction=float(dcfg["valid_fraction"]),
        trim_db=dcfg.get("trim_db"),
    )
    ckpt_dir = run_dir / "checkpoints"
    resume_from = ckpt_dir / LAST if tcfg.get("resume", True) and (ckpt_dir / LAST).exists() else None
    state = load_checkpoint(resume_from) if resume_from is not None else None
    speakers = None
    if dcfg.get("speaker_conditioning", False):
        labels = state["speakers"] if state is not None else corpus.train_speakers
        speakers = SpeakerVocabulary(labels)
    torch.manual_seed(seed)
    model = build_model(
        cfg, regs, cond_features=len(speakers) if speakers else 0, bins=representation.n_bins
    )
    schedule = model.schedule
    crop_frames = int(dcfg["crop_frames"])
    schedule.check(crop_frames, representation.n_bins, what="data.crop_frames")
    if int(scfg.get("count", 0)) > 0:
        schedule.check(int(scfg["frames"]), representation.n_bins, what="sample.frames")
        prime_frames = int(scfg.get("prime_frames", 0) or 0)
        if prime_frames % schedule.time_factor or prime_frames >= int(scfg["frames"]):
            raise ValueError(
                f"sample.prime_frames={prime_frames}: must be a multiple of {schedule.time_factor} and "
                f"less than sample.frames={scfg['frames']}"
            )
    trained = train_tiers(cfg, model.n_tiers)
    shapes = schedule.shapes(crop_frames, representation.n_bins)
    normalizer = Normalizer.from_state_dict(state["normalizer"]) if state is not None else Normalizer.fit(corpus.train)
    train_crops = CropSampler(
        [normalizer.normalize(f) for f in corpus.train], crop_frames, speakers=corpus.train_speakers
    )
    valid_crops, valid_sources = fixed_crops(
        [normalizer.normalize(f) for f in corpus.valid], crop_frames, int(dcfg["valid_crops"]), with_sources=True
    )
    valid_cond = speakers.one_hot([corpus.valid_speakers[k] for k in valid_sources]) if speakers else None
    optimizer = make_optimizer(model, tcfg)
    batch_size = int(tcfg["batch_size"])
    max_steps = int(tcfg["max_steps"])
    metrics: dict[str, Any] = {}
    step = 0
    saved_step: int | None = None  # step of checkpoints/last.pt, if any

    def record_valid(prefix: str, per_tier: dict[int, float]) -> float:
        for g, value in per_tier.items():
            metrics[f"{prefix}_tier{g}"] = value
        metrics[prefix] = overall_nll(per_tier, shapes)
        return metrics[prefix]

    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = saved_step = int(state["step"])
        metrics = dict(state.get("metrics", {}))
        print(f"melforge: resuming from {resume_from} at step {step}", file=sys.stderr)
    else:
        record_valid("valid_nll_step0", evaluate(model, valid_crops, batch_size, valid_cond))

    def checkpoint_state() -> dict[str, Any]:
        return {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": cfg,
            "normalizer": normalizer.state_dict(),
            "representation": representation.config(),
            "speakers": speakers.labels if speakers else None,
            "metrics": metrics,
        }

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step)
    if state is None:
        writer.add_scalar("valid/nll", metrics["valid_nll_step0"], 0)
        _log_spectrogram(writer, "data/valid_crop", normalizer.denormalize(valid_crops[0].numpy()), 0)
    recent: dict[str, list[float]] = {k: list(v) for k, v in metrics.get("recent_train_nll", {}).items()}
    log_every = int(tcfg["log_every"])
    start_time, start_step = time.perf_counter(), step
    bar = tqdm(total=max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr)
    model.train()
    try:
        while step < max_steps:
            x, labels = train_crops.draw(batch_size, batch_generator(seed, step))
            cond = speakers.one_hot(labels) if speakers else None
            nlls = model.tier_nlls(x, cond, trained)  # {g: nats per element of tier g}
            loss = sum(nlls.values())
            if not torch.isfinite(loss):
                raise TrainingDiverged(_diverged_message("loss", loss.item(), step, ckpt_dir, saved_step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norms = {}
            for g in trained:  # each tier is clipped on its own: the tiers train independently
                grad_norms[g] = float(
                    torch.nn.utils.clip_grad_norm_(model.tiers[g - 1].parameters(), float(tcfg["grad_clip"]))
                )
                if not math.isfinite(grad_norms[g]):
                    raise TrainingDiverged(
                        _diverged_message(f"gradient norm of tier {g}", grad_norms[g], step, ckpt_dir, saved_step)
                    )
            optimizer.step()
            step += 1
            for g, value in nlls.items():
                recent[str(g)] = (recent.get(str(g), []) + [value.item()])[-log_every:]
            bar.update(1)
            if step % log_every == 0 or step == max_steps:
                train_now = overall_nll({int(g): float(np.mean(v)) for g, v in recent.items()}, shapes)
                bar.set_postfix(nll=f"{train_now:.3f}")
                writer.add_scalar("train/nll", train_now, step)
                for g in trained:
                    if len(trained) > 1 or model.n_tiers > 1:
                        writer.add_scalar(f"train/nll_tier{g}", float(np.mean(recent[str(g)])), step)
                    writer.add_scalar(f"train/grad_norm_tier{g}", grad_norms[g], step)
            if step % int(tcfg["valid_every"]) == 0 or step == max_steps:
                per_tier = evaluate(model, valid_crops, batch_size, valid_cond)
                record_valid("valid_nll", per_tier)
                writer.add_scalar("valid/nll", metrics["valid_nll"], step)
                if model.n_tiers > 1:
                    for g, value in per_tier.items():
                        writer.add_scalar(f"valid/nll_tier{g}", value, step)
                tiers_text = (
                    " (" + ", ".join(f"tier {g} {v:.4f}" for g, v in per_tier.items()) + ")" if model.n_tiers > 1 else ""
                )
                bar.write(f"step {step}: valid NLL {metrics['valid_nll']:.4f} nats/element{tiers_text}")
            if step % int(tcfg["checkpoint_every"]) == 0 or step == max_steps:
                metrics["recent_train_nll"] = recent
                save_checkpoint(ckpt_dir, step, checkpoint_state(), keep=int(tcfg.get("keep_checkpoints", 3)))
                saved_step = step
    finally:
        bar.close()
    elapsed = time.perf_counter() - start_time
    if "valid_nll" not in metrics:  # resumed at max_steps: nothing trained in this call
        record_valid("valid_nll", evaluate(model, valid_crops, batch_size, valid_cond))
    train_per_tier = {int(g): float(np.mean(v)) for g, v in recent.items() if v}
    out: dict[str, Any] = {
        "steps": step,
        "tiers": model.n_tiers,
        "tiers_trained": trained,
        "tier_shapes": [list(s) for s in shapes],
        "valid_nll_step0": metrics["valid_nll_step0"],
        "valid_nll": metrics["valid_nll"],
        "train_nll": overall_nll(train_per_tier, shapes) if train_per_tier else float("nan"),
    }
    for g in range(1, model.n_tiers + 1):
        out[f"valid_nll_tier{g}"] = metrics[f"valid_nll_tier{g}"]
        out[f"valid_nll_step0_tier{g}"] = metrics[f"valid_nll_step0_tier{g}"]
        if g in train_per_tier:
            out[f"train_nll_tier{g}"] = train_per_tier[g]
    for key in [k for k in out if "_nll" in k]:
        out[key.replace("_nll", "_bits")] = nats_to_bits(out[key]) if math.isfinite(out[key]) else float("nan")
    out.update(
        {
            "units": "NLL in nats (and bits) per element of the normalised spectrogram; valid_nll and train_nll "
            "are over the whole spectrogram (the sum over tiers, eq. 10), *_tier<g> per element of tier g",
            "speakers": speakers.labels if speakers else None,
            "train_clips": len(corpus.train),
            "valid_clips": len(corpus.valid),
            "valid_crops": int(valid_crops.shape[0]),
            "train_seconds_this_run": elapsed,
            "train_elements_per_second": (step - start_step) * batch_size * crop_frames * representation.n_bins
            / max(elapsed, 1e-9),
        }
    )
    if int(scfg.get("count", 0)) > 0:
        from .samples import prime_from_features, render_samples

        prime = None
        prime_frames = int(scfg.get("prime_frames", 0) or 0)
        prime_speaker = None
        if prime_frames:
            prime, prime_speaker = prime_from_features(
                corpus.valid, corpus.valid_speakers, normalizer, prime_frames, scfg.get("prime_audio"), representation
            )
        rendered = render_samples(
            model, representation, normalizer, inverter, run_dir / "samples",
            count=int(scfg["count"]), frames=int(scfg["frames"]),
            temperature=scfg["temperature"], seed=int(scfg.get("seed", seed)),
            speakers=speakers, speaker=scfg.get("speaker") or prime_speaker, prime=prime,
        )
        out["samples"] = [r.summary() for r in rendered]
        for k, r in enumerate(rendered):
            _log_spectrogram(writer, f"samples/{k}", np.load(r.npy), step)
    writer.close()
    with atomic_path(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    return out


def _diverged_message(what: str, value: float, step: int, ckpt_dir: Path, saved_step: int | None) -> str:
    where = (
        f"the last good checkpoint {ckpt_dir / LAST} (step {saved_step}) is intact"
        if saved_step is not None
        else "no checkpoint had been written yet"
    )
    return (
        f"training stopped: non-finite {what} ({value}) at step {step + 1}; {where}. "
        "Lower train.lr or train.grad_clip, or check the data for NaN/inf."
    )


def _log_spectrogram(writer, tag: str, features: np.ndarray, step: int) -> None:
    from .plotting import spectrogram_figure

    writer.add_figure(tag, spectrogram_figure(features, title=tag), step, close=True)


def _write_yaml(path: Path, cfg: dict) -> None:
    from omegaconf import OmegaConf

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
