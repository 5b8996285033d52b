"""The reporter of a training run: progress bar, TensorBoard, log lines and ``metrics.json``, for
any learner's named figures (``nll`` and ``nll_tier<g>`` of a likelihood model, ``loss`` and its
terms of a vocoder)."""

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
from .run_dir import flatten

#: The runner's log: Hydra's job logging sends it to the console and to ``<run dir>/train.log``.
log = logging.getLogger("melforge.train")


class NonFiniteMetric(RuntimeError):
    """A validation metric came out NaN or inf; it is not written, and the run stops with the cause."""


def metric_key(split: str, name: str, step0: bool = False) -> str:
    """The ``metrics.json`` key of figure ``name`` of ``split`` (``valid``/``train``):
    ``valid_nll``, ``valid_nll_tier2``, ``valid_nll_step0`` (the pass before training)."""
    return f"{split}_{name}" + ("_step0" if step0 else "")


class Reporter:
    """Everything a training run tells the outside world, in one place.

    Args:
        run_dir: the run directory (``tensorboard/`` goes there).
        step: the step training starts at (0, or the resumed step: TensorBoard purges the
            points after it, which a killed run may have written past its last checkpoint, so a
            resumed run does not draw them twice; the points at the resumed step itself were
            written before that checkpoint and stay).
        max_steps: the step training ends at.
        metrics: metrics carried over from a checkpoint (``valid_nll_step0`` etc.).
        monitor: the learner's main figure (``nll``, ``loss``): named first in log lines, and
            the one whose lowest validation value is kept as ``best_valid_<monitor>``.
        units: the unit of ``monitor`` in log lines (``nats/element``).
        label: how log lines name ``monitor`` (``NLL``; default: its name).
        writer: a TensorBoard ``SummaryWriter``-like object (default: one on
            ``run_dir/tensorboard``); ranks other than 0 pass a writer that drops everything.
    """

    def __init__(self, run_dir: Path, step: int, max_steps: int, metrics: dict, monitor: str = "loss",
                 units: str = "", writer: Any = None, show_bar: bool = True, label: str | None = None):
        if writer is None:
            from torch.utils.tensorboard import (
                SummaryWriter,  # deferred: TensorBoard is slow to import
            )

            # purge_step=k drops the points at steps >= k: keep those of the checkpoint's own step (a fresh
            # run, step 0, drops every point of an earlier run in the folder)
            writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1 if step else 0)
        self.writer = writer
        self.metrics: dict[str, Any] = dict(metrics)
        self.monitor, self.units, self.label = monitor, units, label or monitor
        self.bar = tqdm(  # for terminals; the log lines carry the same information everywhere
            total=max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr,
            disable=not (show_bar and sys.stderr.isatty()),
        )

    def validation(self, step: int, values: dict[str, float], step0: bool = False) -> float:
        """Record a validation pass (``{figure name: value}``, containing the monitored figure)
        as ``valid_<name>`` (``valid_<name>_step0`` before training); returns the monitored value.

        Raises:
            NonFiniteMetric: a value is NaN or inf (nothing is recorded).
        """
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise NonFiniteMetric(
                f"{metric_key('valid', self.monitor, step0)} at step {step} is not finite "
                f"({', '.join(f'{k}: {v}' for k, v in bad.items())}): the validation data or the weights hold "
                "NaN/inf; nothing was written for this step"
            )
        for name, value in values.items():
            self.metrics[metric_key("valid", name, step0)] = value
            self.writer.add_scalar(f"valid/{name}", value, step)
        main = values[self.monitor]
        best = self.metrics.get(f"best_valid_{self.monitor}")
        if best is None or main < best:
            self.metrics[f"best_valid_{self.monitor}"], self.metrics["best_valid_step"] = main, step
        others = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != self.monitor)
        log.info(f"step {step}: valid {self.label} {main:.4f} {self.units}".rstrip() + (f" ({others})" if others else ""))
        return main

    def train_step(self, step: int) -> None:
        """One update done."""
        self.bar.update(1)

    def train_log(self, step: int, means: dict[str, float], grad_norms: dict[str, float], lrs: dict[str, float]) -> None:
        """Log the running training figures (``means``: each over the last ``log_every``
        steps), the gradient norms of the last step per clipping group and the learning rate
        of every optimiser."""
        main = means.get(self.monitor, float("nan"))
        self.bar.set_postfix({self.monitor: f"{main:.3f}"})
        others = ", ".join(f"{k} {v:.4f}" for k, v in means.items() if k != self.monitor)
        log.info(f"step {step}: train {self.label} {main:.4f} {self.units}".rstrip()
                 + (f" ({others})" if others else "")
                 + ", lr " + ", ".join(f"{v:.3g}" for v in lrs.values())
                 + ", grad norm " + ", ".join(f"{v:.3g}" for v in grad_norms.values()))
        for name, value in means.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        for name, value in lrs.items():
            self.writer.add_scalar("train/lr" if len(lrs) == 1 else f"train/lr_{name}", value, step)
        for name, value in grad_norms.items():
            self.writer.add_scalar(f"train/grad_norm_{name}", value, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A spectrogram-like image ``(frames, bins)`` into TensorBoard."""
        from .plotting import (
            spectrogram_figure,  # deferred: matplotlib is slow to import
        )

        self.writer.add_figure(tag, spectrogram_figure(image, title=tag), step, close=True)

    def audio(self, tag: str, audio: np.ndarray, sr: int, step: int) -> None:
        """A waveform ``(samples,)`` at ``sr`` Hz into TensorBoard (to listen beside the images)."""
        self.writer.add_audio(tag, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)[None], step, sample_rate=sr)

    def hparams(self, cfg: dict[str, Any], metrics: dict[str, Any]) -> None:
        """The run's config (every scalar key, flattened: ``backbone.hidden_size`` …) against its
        final monitored figures, for TensorBoard's HParams view across the runs of a sweep."""
        params = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in flatten(cfg).items()}
        keys = {metric_key(s, self.monitor, z) for s, z in (("valid", False), ("train", False), ("valid", True))}
        finals = {f"hparam/{k}": float(v) for k, v in metrics.items()
                  if k in keys and isinstance(v, (int, float)) and math.isfinite(v)}
        self.writer.add_hparams(params, finals, run_name="hparams")

    def close(self) -> None:
        self.bar.close()
        self.writer.close()

    def summary(self, recent: dict[str, list[float]]) -> dict[str, Any]:
        """The run's figures: every ``valid_*`` value recorded, ``best_valid_<monitor>`` and its
        step, and ``train_<name>``, the mean of each figure over the last steps (``recent``)."""
        out: dict[str, Any] = {"monitor": self.monitor, "monitor_label": self.label, "monitor_units": self.units}
        out.update({k: v for k, v in self.metrics.items() if k.startswith(("valid_", "best_valid_"))})
        out.update({metric_key("train", k): float(np.mean(v)) if v else float("nan") for k, v in recent.items()})
        return out


class NullWriter:
    """A TensorBoard writer that drops everything (ranks other than 0 write nothing)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """``metrics`` as JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
