"""The reporter of a training run: progress bar, TensorBoard, log lines and ``metrics.json``."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .atomic import atomic_path
from .model import nats_to_bits

#: The runner's log: Hydra's job logging sends it to the console and to ``<run dir>/train.log``.
log = logging.getLogger("melforge.train")


def overall_nll(per_tier: dict[int, float], shapes: list[tuple[int, int]]) -> float:
    """Per-tier NLLs (nats per element of each tier) → nats per element of the spectrogram made
    of those tiers: ``Σ_g n_g·NLL_g / Σ_g n_g`` (the log-likelihood is a sum over tiers, eq. 10)."""
    sizes = {g: shapes[g - 1][0] * shapes[g - 1][1] for g in per_tier}
    return sum(per_tier[g] * sizes[g] for g in per_tier) / sum(sizes.values())


class NonFiniteMetric(RuntimeError):
    """A validation metric came out NaN or inf; it is not written, and the run stops with the cause."""


class Reporter:
    """Everything a training run tells the outside world, in one place.

    Args:
        run_dir: the run directory (``tensorboard/`` and ``metrics.json`` go there).
        shapes: ``(frames, bins)`` of every tier of a training crop (for :func:`overall_nll`).
        n_tiers: tiers of the model.
        step: the step training starts at (0, or the resumed step: TensorBoard purges the
            points after it, which a killed run may have written past its last checkpoint, so a
            resumed run does not draw them twice; the points at the resumed step itself were
            written before that checkpoint and stay).
        max_steps: the step training ends at.
        metrics: metrics carried over from a checkpoint (``valid_nll_step0`` etc.).
    """

    def __init__(self, run_dir: Path, shapes: list[tuple[int, int]], n_tiers: int, step: int, max_steps: int, metrics: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.shapes = shapes
        self.n_tiers = n_tiers
        self.metrics: dict[str, Any] = dict(metrics)
        # purge_step=k drops the points at steps >= k: keep those of the checkpoint's own step (a fresh
        # run, step 0, drops every point of an earlier run in the folder)
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1 if step else 0)
        self.bar = tqdm(  # for terminals; the log lines carry the same information everywhere
            total=max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr,
            disable=not sys.stderr.isatty(),
        )

    def validation(self, step: int, per_tier: dict[int, float], prefix: str = "valid_nll") -> float:
        """Record a validation pass (``{g: nats per element of tier g}``) as ``<prefix>`` and
        ``<prefix>_tier<g>``; returns the whole-spectrogram NLL.

        Raises:
            NonFiniteMetric: a value is NaN or inf (nothing is recorded).
        """
        bad = {g: v for g, v in per_tier.items() if not math.isfinite(v)}
        if bad:
            raise NonFiniteMetric(
                f"{prefix} at step {step} is not finite ({', '.join(f'tier {g}: {v}' for g, v in bad.items())}): "
                "the validation crops or the model's weights hold NaN/inf; nothing was written for this step"
            )
        for g, value in per_tier.items():
            self.metrics[f"{prefix}_tier{g}"] = value
        value = self.metrics[prefix] = overall_nll(per_tier, self.shapes)
        self.writer.add_scalar("valid/nll", value, step)
        if self.n_tiers > 1:
            for g, v in per_tier.items():
                self.writer.add_scalar(f"valid/nll_tier{g}", v, step)
        tiers_text = " (" + ", ".join(f"tier {g} {v:.4f}" for g, v in per_tier.items()) + ")" if self.n_tiers > 1 else ""
        log.info(f"step {step}: valid NLL {value:.4f} nats/element{tiers_text}")
        return value

    def train_step(self, step: int) -> None:
        """One update done."""
        self.bar.update(1)

    def train_log(
        self, step: int, recent: dict[str, list[float]], grad_norms: dict[int, float], lr: float | None = None
    ) -> None:
        """Log the running training NLL (``recent``: the last NLLs of every trained tier), the
        gradient norms of the last step and the learning rate."""
        train_now = overall_nll({int(g): float(np.mean(v)) for g, v in recent.items()}, self.shapes)
        self.bar.set_postfix(nll=f"{train_now:.3f}")
        log.info(f"step {step}: train NLL {train_now:.4f} nats/element"
                 + (f", lr {lr:.3g}" if lr is not None else "")
                 + ", grad norm " + ", ".join(f"{v:.3g}" for v in grad_norms.values()))
        self.writer.add_scalar("train/nll", train_now, step)
        if lr is not None:
            self.writer.add_scalar("train/lr", lr, step)
        for g in grad_norms:
            if len(grad_norms) > 1 or self.n_tiers > 1:
                self.writer.add_scalar(f"train/nll_tier{g}", float(np.mean(recent[str(g)])), step)
            self.writer.add_scalar(f"train/grad_norm_tier{g}", grad_norms[g], step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A spectrogram-like image ``(frames, bins)`` into TensorBoard."""
        from .plotting import spectrogram_figure

        self.writer.add_figure(tag, spectrogram_figure(image, title=tag), step, close=True)

    def audio(self, tag: str, audio: np.ndarray, sr: int, step: int) -> None:
        """A waveform ``(samples,)`` at ``sr`` Hz into TensorBoard (to listen beside the images)."""
        self.writer.add_audio(tag, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)[None], step, sample_rate=sr)

    def hparams(self, cfg: dict[str, Any], metrics: dict[str, Any]) -> None:
        """The run's config (every scalar key, flattened: ``backbone.hidden_size`` …) against its
        final metrics, for TensorBoard's HParams view across the runs of a sweep."""
        from .run_dir import flatten

        params = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in flatten(cfg).items()}
        finals = {f"hparam/{k}": float(v) for k, v in metrics.items()
                  if k in ("valid_nll", "train_nll", "valid_nll_step0") and isinstance(v, (int, float)) and math.isfinite(v)}
        self.writer.add_hparams(params, finals, run_name="hparams")

    def close(self) -> None:
        self.bar.close()
        self.writer.close()

    def summary(self, recent: dict[str, list[float]], extra: dict[str, Any]) -> dict[str, Any]:
        """The metrics of the run: NLLs in nats per element (bits alongside), per tier too."""
        train_per_tier = {int(g): float(np.mean(v)) for g, v in recent.items() if v}
        m = self.metrics
        out: dict[str, Any] = {
            "valid_nll_step0": m["valid_nll_step0"],
            "valid_nll": m["valid_nll"],
            "train_nll": overall_nll(train_per_tier, self.shapes) if train_per_tier else float("nan"),
        }
        for g in range(1, self.n_tiers + 1):
            out[f"valid_nll_tier{g}"] = m[f"valid_nll_tier{g}"]
            out[f"valid_nll_step0_tier{g}"] = m[f"valid_nll_step0_tier{g}"]
            if g in train_per_tier:
                out[f"train_nll_tier{g}"] = train_per_tier[g]
        for key in [k for k in out if "_nll" in k]:
            out[key.replace("_nll", "_bits")] = nats_to_bits(out[key]) if math.isfinite(out[key]) else float("nan")
        out.update(extra)
        return out


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """``metrics`` as JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
