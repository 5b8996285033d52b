"""``melforge-sample checkpoint=PATH``: draw spectrograms from a saved checkpoint, plot and
invert them.

    melforge-sample checkpoint=runs/speech_tiny/<date>/checkpoints/last.pt sample.count=2 sample.temperature=0.8
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from melforge.core.checkpoint import load_checkpoint
from melforge.core.experiment import build_model
from melforge.core.normalization import Normalizer
from melforge.core.plugins import registries
from melforge.core.samples import render_samples


def sample_from_checkpoint(checkpoint: str | Path, out_dir: str | Path, sample_cfg: dict, inverter_cfg: dict | None = None):
    """Rebuild the model of ``checkpoint`` and render ``sample_cfg["count"]`` samples into
    ``out_dir`` (see :func:`melforge.core.samples.render_samples`). ``inverter_cfg`` overrides
    the checkpoint's inverter when given."""
    state = load_checkpoint(checkpoint)
    cfg = state["config"]
    regs = registries()
    model = build_model(cfg, regs)
    model.load_state_dict(state["model"])
    representation = regs.representation.build(cfg["representation"])
    inverter = regs.inverter.build(inverter_cfg or cfg["inverter"])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    return render_samples(
        model, representation, Normalizer.from_state_dict(state["normalizer"]), inverter, out_dir,
        count=int(sample_cfg["count"]), frames=int(sample_cfg["frames"]),
        temperature=float(sample_cfg["temperature"]), seed=int(sample_cfg["seed"]),
    )


@hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name="sample")
def _app(cfg: DictConfig) -> None:
    if cfg.checkpoint is None:
        raise SystemExit("melforge-sample: give checkpoint=PATH (a .pt file written by melforge-train)")
    out_dir = Path(HydraConfig.get().runtime.output_dir) / "samples"
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    for r in sample_from_checkpoint(cfg.checkpoint, out_dir, plain["sample"], plain.get("inverter")):
        print(f"melforge: wrote {r.wav} and {r.png} (NLL {r.nll_per_element:.4f} nats/element, {r.seconds:.1f} s)", file=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
