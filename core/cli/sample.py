"""``melforge-sample checkpoint=PATH``: draw from a saved checkpoint, plot and write audio.

    melforge-sample checkpoint=runs/speech_tiny/<date>/checkpoints/last.pt sample.count=2 sample.temperature=0.8
    melforge-sample checkpoint=... sample.prime_frames=32 sample.prime_audio=my.wav   # priming (§6)
    melforge-sample checkpoint=... sample.speaker=fr                                  # a speaker-conditioned model
    melforge-sample checkpoint=... sampler=cached                                     # another sampler
"""

from __future__ import annotations

import sys
from pathlib import Path

from melforge.core.app import check_sample_config, run_hydra_app
from melforge.core.config_schema import SampleApp


def _task(cfg: dict, output_dir: str) -> None:
    from melforge.core.samples import sample_checkpoint  # torch after the OpenMP policy is set

    if cfg["checkpoint"] is None:
        raise ValueError("checkpoint: give checkpoint=PATH (a .pt file written by melforge-train)")
    scfg = cfg["sample"]
    print(f"melforge-sample: drawing {scfg['count']} sample(s) of {scfg['frames']} frames from {cfg['checkpoint']} "
          f"into {Path(output_dir) / 'samples'}", file=sys.stderr)
    rendered = sample_checkpoint(
        cfg["checkpoint"], Path(output_dir) / "samples", cfg["sample"],
        inverter_cfg=cfg.get("inverter"), sampler_cfg=cfg.get("sampler"), threads=cfg.get("threads"),
        device=cfg.get("device") or "auto",
    )
    for r in rendered:
        print(f"melforge: wrote {r.wav} and {r.png} (NLL {r.nll_per_element:.4f} nats/element, {r.seconds:.1f} s)", file=sys.stderr)
        if r.tier_nll_per_element and r.tiers_png is not None:
            tiers = ", ".join(f"tier {g} {v:.4f}" for g, v in enumerate(r.tier_nll_per_element, start=1))
            print(f"melforge:   per tier (nats/element): {tiers}; stages in {r.tiers_png}", file=sys.stderr)


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/sample.yaml``)."""
    run_hydra_app("melforge-sample", "sample", _task, check_sample_config, SampleApp)


if __name__ == "__main__":
    main()
