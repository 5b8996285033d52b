"""``melforge-train``: train, sample and write audio, as one Hydra app.

    melforge-train                                   # experiment=speech_tiny (the default)
    melforge-train experiment=speech_tiny train.max_steps=50 hydra.run.dir=runs/try
    melforge-train experiment=wavenet_speech_tiny    # the WaveNet baseline through the same runner
    melforge-train -m backbone.hidden_size=32,64     # an ablation sweep
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from melforge.core.app import check_train_config, run_hydra_app
from melforge.core.config_schema import TrainApp


def _task(cfg: dict, run_dir: str) -> float:
    from melforge.core.learners import (
        train,  # deferred: torch is imported after run_hydra_app set the OpenMP policy
    )

    metrics = train(cfg, run_dir)
    log_skip_summary(run_dir)
    logging.getLogger("melforge.train").info(done_line(cfg, run_dir, metrics))
    return metrics[f"valid_{metrics['monitor']}"]


def log_skip_summary(run_dir: str) -> None:
    """One warning line, ``6 files skipped, see <run>/skipped.json``, when the run's data left
    clips out: also on a run that read its features from the cache, where the per-file warnings
    of the first analysis are not repeated (the runner writes ``skipped.json`` on every run)."""
    path = Path(run_dir) / "skipped.json"
    try:
        skipped = json.loads(path.read_text()).get("skipped") or []
    except (OSError, ValueError):  # rank > 0, or no data read: nothing to sum up
        return
    if skipped:
        noun = "file" if len(skipped) == 1 else "files"
        logging.getLogger("melforge.train").warning(f"{len(skipped)} {noun} skipped, see {path}")


def done_line(cfg: dict, run_dir: str, metrics: dict) -> str:
    """The end-of-training line: the run folder, the monitored figure (a model's NLL, a vocoder's
    loss) before and after, and the first sample's WAV with the inverter that rendered it (a
    waveform representation needs none).

    Args:
        cfg: the run's resolved config (``representation``).
        metrics: what :func:`melforge.core.learners.train` returned (``monitor``; ``samples``:
            the rendered samples' summaries and ``inverter``, when any were drawn).
    """
    monitor, label = metrics["monitor"], metrics.get("monitor_label", metrics["monitor"])
    units = f" {metrics['monitor_units']}" if metrics.get("monitor_units") else ""
    line = (f"done in {run_dir}: valid {label} {metrics[f'valid_{monitor}_step0']:.4f} → "
            f"{metrics[f'valid_{monitor}']:.4f}{units}")
    if f"valid_{monitor.replace('nll', 'bits')}" in metrics and monitor == "nll":
        line += f" ({metrics['valid_bits']:.4f} bits)"
    line += f"; train {label} {metrics[f'train_{monitor}']:.4f}"
    samples = metrics.get("samples") or []
    if samples:
        more = f" (and {len(samples) - 1} more)" if len(samples) > 1 else ""
        how = f"inverted with {metrics['inverter']}" if metrics.get("inverter") else f"decoded by {cfg['representation']['name']}"
        line += f"; sample {samples[0]['wav']}{more}, {how}"
    return line


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/train.yaml``)."""
    run_hydra_app("melforge-train", "train", _task, check_train_config, TrainApp)


if __name__ == "__main__":
    main()
