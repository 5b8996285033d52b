"""``melforge-train``: train, sample and write audio, as one Hydra app.

    melforge-train                                   # experiment=speech_tiny (the default)
    melforge-train experiment=speech_tiny train.max_steps=50 hydra.run.dir=runs/try
    melforge-train experiment=wavenet_speech_tiny    # the WaveNet baseline through the same runner
    melforge-train -m backbone.hidden_size=32,64     # an ablation sweep
"""

from __future__ import annotations

import logging

from melforge.core.app import check_train_config, run_hydra_app
from melforge.core.config_schema import TrainApp


def _task(cfg: dict, run_dir: str) -> float:
    from melforge.core.learners import train  # deferred: torch is imported after run_hydra_app set the OpenMP policy

    metrics = train(cfg, run_dir)
    monitor, label = metrics["monitor"], metrics.get("monitor_label", metrics["monitor"])
    units = f" {metrics['monitor_units']}" if metrics.get("monitor_units") else ""
    logging.getLogger("melforge.train").info(
        f"done in {run_dir}: valid {label} {metrics[f'valid_{monitor}_step0']:.4f} → {metrics[f'valid_{monitor}']:.4f}{units}; "
        f"train {label} {metrics[f'train_{monitor}']:.4f}"
    )
    return metrics[f"valid_{monitor}"]


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/train.yaml``)."""
    run_hydra_app("melforge-train", "train", _task, check_train_config, TrainApp)


if __name__ == "__main__":
    main()
