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
from .experiment import build_parts
from .features import FeatureCorpus
from .model import SpectrogramModel, nats_to_bits
from .normalization import Normalizer


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or inf; the last good checkpoint is untouched."""


def batch_generator(seed: int, step: int) -> torch.Generator:
    """The RNG for the batch of update ``step``: a pure function of (seed, step), so a resumed
    run draws exactly the batches an uninterrupted one would."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


@torch.no_grad()
def evaluate(model: SpectrogramModel, crops: torch.Tensor, batch_size: int) -> float:
    """Mean NLL in nats per element of ``crops: (n, frames, bins)``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(crops), batch_size):
        x = crops[start : start + batch_size]
        total += float(-model.log_prob(x).sum())
        count += x.numel()
    model.train(was_training)
    return total / count


def make_optimizer(model: torch.nn.Module, train_cfg: dict) -> torch.optim.Optimizer:
    """RMSProp with the paper's learning rate 1e-4 and momentum 0.9 (seed 000 Appendix A)."""
    return torch.optim.RMSprop(
        model.parameters(),
        lr=float(train_cfg["lr"]),
        momentum=float(train_cfg["momentum"]),
        alpha=float(train_cfg.get("alpha", 0.99)),
        eps=float(train_cfg.get("eps", 1e-8)),
    )


def train(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train the model described by ``cfg`` (a resolved plain dict), writing into ``run_dir``:
    ``checkpoints/`` (``step_*.pt`` and ``last.pt``), ``tensorboard/``, ``metrics.json``,
    ``config.yaml`` and, if ``cfg["sample"]["count"] > 0``, ``samples/*.{png,wav,npy}``.

    If ``run_dir/checkpoints/last.pt`` exists and ``train.resume`` is true, training continues
    from it and ends at ``train.max_steps`` exactly as an uninterrupted run would.

    Returns:
        The metrics written to ``metrics.json`` (NLLs in nats per element, bits alongside).

    Raises:
        TrainingDiverged: a non-finite loss or gradient norm (nothing is written for that step).
        DatasetError, EntryConfigError, UnknownEntryError: bad data or config (named).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg, dcfg = cfg["train"], cfg["data"]
    seed = int(cfg.get("seed", 0))
    torch.set_num_threads(int(cfg.get("threads", 2)))
    _write_yaml(run_dir / "config.yaml", cfg)

    parts = build_parts(cfg)
    model = parts.model
    corpus = FeatureCorpus.build(
        parts.dataset,
        parts.representation,
        valid_fraction=float(dcfg["valid_fraction"]),
        trim_db=dcfg.get("trim_db"),
    )
    ckpt_dir = run_dir / "checkpoints"
    resume_from = ckpt_dir / LAST if tcfg.get("resume", True) and (ckpt_dir / LAST).exists() else None
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        normalizer = Normalizer.from_state_dict(state["normalizer"])
    else:
        state = None
        normalizer = Normalizer.fit(corpus.train)
    crop_frames = int(dcfg["crop_frames"])
    train_crops = CropSampler([normalizer.normalize(f) for f in corpus.train], crop_frames)
    valid_crops = fixed_crops([normalizer.normalize(f) for f in corpus.valid], crop_frames, int(dcfg["valid_crops"]))
    optimizer = make_optimizer(model, tcfg)
    batch_size = int(tcfg["batch_size"])
    max_steps = int(tcfg["max_steps"])
    metrics: dict[str, Any] = {}
    step = 0
    saved_step: int | None = None  # step of checkpoints/last.pt, if any
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = saved_step = int(state["step"])
        metrics = dict(state.get("metrics", {}))
        print(f"melforge: resuming from {resume_from} at step {step}", file=sys.stderr)
    else:
        metrics["valid_nll_step0"] = evaluate(model, valid_crops, batch_size)
        metrics["valid_bits_step0"] = nats_to_bits(metrics["valid_nll_step0"])

    def checkpoint_state() -> dict[str, Any]:
        return {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": cfg,
            "normalizer": normalizer.state_dict(),
            "representation": parts.representation.config(),
            "metrics": metrics,
        }

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step)
    if state is None:
        writer.add_scalar("valid/nll", metrics["valid_nll_step0"], 0)
        _log_spectrogram(writer, "data/valid_crop", normalizer.denormalize(valid_crops[0].numpy()), 0)
    recent: list[float] = list(metrics.get("recent_train_nll", []))
    log_every = int(tcfg["log_every"])
    start_time, start_step = time.perf_counter(), step
    bar = tqdm(total=max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr)
    model.train()
    try:
        while step < max_steps:
            x = train_crops.batch(batch_size, batch_generator(seed, step))
            loss = model.nll(x)
            if not torch.isfinite(loss):
                raise TrainingDiverged(_diverged_message("loss", loss.item(), step, ckpt_dir, saved_step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
            if not torch.isfinite(grad_norm):
                raise TrainingDiverged(_diverged_message("gradient norm", float(grad_norm), step, ckpt_dir, saved_step))
            optimizer.step()
            step += 1
            value = loss.item()
            recent = (recent + [value])[-log_every:]
            bar.update(1)
            if step % log_every == 0 or step == max_steps:
                bar.set_postfix(nll=f"{np.mean(recent):.3f}")
                writer.add_scalar("train/nll", float(np.mean(recent)), step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
            if step % int(tcfg["valid_every"]) == 0 or step == max_steps:
                metrics["valid_nll"] = evaluate(model, valid_crops, batch_size)
                writer.add_scalar("valid/nll", metrics["valid_nll"], step)
                bar.write(f"step {step}: train NLL {np.mean(recent):.4f}, valid NLL {metrics['valid_nll']:.4f} nats/element")
            if step % int(tcfg["checkpoint_every"]) == 0 or step == max_steps:
                metrics["recent_train_nll"] = recent
                save_checkpoint(ckpt_dir, step, checkpoint_state(), keep=int(tcfg.get("keep_checkpoints", 3)))
                saved_step = step
    finally:
        bar.close()
    elapsed = time.perf_counter() - start_time
    if "valid_nll" not in metrics:  # resumed at max_steps: nothing trained in this call
        metrics["valid_nll"] = evaluate(model, valid_crops, batch_size)
    out = {
        "steps": step,
        "valid_nll_step0": metrics["valid_nll_step0"],
        "valid_nll": metrics["valid_nll"],
        "train_nll": float(np.mean(recent)) if recent else float("nan"),
        "valid_bits_step0": nats_to_bits(metrics["valid_nll_step0"]),
        "valid_bits": nats_to_bits(metrics["valid_nll"]),
        "units": "NLL in nats (and bits) per element of the normalised spectrogram",
        "train_clips": len(corpus.train),
        "valid_clips": len(corpus.valid),
        "valid_crops": int(valid_crops.shape[0]),
        "train_seconds_this_run": elapsed,
        "train_elements_per_second": (step - start_step) * batch_size * crop_frames * parts.representation.n_bins
        / max(elapsed, 1e-9),
    }
    out["train_bits"] = nats_to_bits(out["train_nll"]) if math.isfinite(out["train_nll"]) else float("nan")
    scfg = cfg.get("sample", {})
    if int(scfg.get("count", 0)) > 0:
        from .samples import render_samples

        rendered = render_samples(
            model, parts.representation, normalizer, parts.inverter, run_dir / "samples",
            count=int(scfg["count"]), frames=int(scfg["frames"]),
            temperature=float(scfg["temperature"]), seed=int(scfg.get("seed", seed)),
        )
        out["samples"] = [
            {"png": str(r.png), "wav": str(r.wav), "nll": r.nll_per_element, "seconds": r.seconds} for r in rendered
        ]
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
