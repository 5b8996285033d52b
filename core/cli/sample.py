"""``melforge-sample checkpoint=PATH``: draw from a saved checkpoint, plot and write audio.

    melforge-sample checkpoint=runs/speech_tiny/<date>/checkpoints/last.pt sample.count=2 sample.temperature=0.8
    melforge-sample checkpoint=... sample.prime_frames=32 sample.prime_audio=my.wav   # priming (§6)
    melforge-sample checkpoint=... sample.speaker=fr                                  # a speaker-conditioned model
    melforge-sample checkpoint=... sampler=cached                                     # another sampler
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from melforge.core.samples import sample_checkpoint


@hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name="sample")
def _app(cfg: DictConfig) -> None:
    if cfg.checkpoint is None:
        raise SystemExit("melforge-sample: give checkpoint=PATH (a .pt file written by melforge-train)")
    out_dir = Path(HydraConfig.get().runtime.output_dir) / "samples"
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    rendered = sample_checkpoint(
        cfg.checkpoint, out_dir, plain["sample"], inverter_cfg=plain.get("inverter"), sampler_cfg=plain.get("sampler")
    )
    for r in rendered:
        print(f"melforge: wrote {r.wav} and {r.png} (NLL {r.nll_per_element:.4f} nats/element, {r.seconds:.1f} s)", file=sys.stderr)
        if r.tier_nll_per_element and r.tiers_png is not None:
            tiers = ", ".join(f"tier {g} {v:.4f}" for g, v in enumerate(r.tier_nll_per_element, start=1))
            print(f"melforge:   per tier (nats/element): {tiers}; stages in {r.tiers_png}", file=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
