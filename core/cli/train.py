"""``melforge-train``: train, sample and invert, as one Hydra app.

    melforge-train                                   # experiment=speech_tiny (the default)
    melforge-train experiment=speech_tiny train.max_steps=50 hydra.run.dir=runs/try
    melforge-train -m backbone.hidden_size=32,64     # an ablation sweep
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from melforge.core.training import train


@hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name="train")
def _app(cfg: DictConfig) -> float:
    run_dir = HydraConfig.get().runtime.output_dir
    metrics = train(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True), run_dir)
    print(
        f"melforge: done in {run_dir}: valid NLL {metrics['valid_nll_step0']:.4f} → {metrics['valid_nll']:.4f} "
        f"nats/element ({metrics['valid_bits']:.4f} bits); train NLL {metrics['train_nll']:.4f}",
        file=sys.stderr,
    )
    return metrics["valid_nll"]


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
