"""``melforge-sample checkpoint=PATH``: draw from a saved checkpoint, plot and write audio.

    melforge-sample checkpoint=runs/speech_tiny/<date>/checkpoints/last.pt sample.count=2 sample.temperature=0.8
    melforge-sample checkpoint=... sample.prime_frames=32 sample.prime_audio=my.wav   # priming (§6)
    melforge-sample checkpoint=... sample.speaker=fr                                  # a speaker-conditioned model
    melforge-sample checkpoint=... sampler=cached                                     # another sampler
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from melforge.core.app import check_sample_config, run_hydra_app
from melforge.core.config_schema import SampleApp


def _task(cfg: dict, output_dir: str) -> None:
    from melforge.core.samples import (
        sample_checkpoint,  # torch after the OpenMP policy is set
    )

    scfg = cfg["sample"]
    print(f"melforge-sample: drawing {scfg['count']} sample(s) of {scfg['frames']} frames from {cfg['checkpoint']} "
          f"into {Path(output_dir) / 'samples'}", file=sys.stderr)
    try:
        rendered = sample_checkpoint(
            cfg["checkpoint"], Path(output_dir) / "samples", cfg["sample"],
            inverter_cfg=cfg.get("inverter"), sampler_cfg=cfg.get("sampler"), threads=cfg.get("threads"),
            device=cfg.get("device") or "auto",
        )
    except Exception:
        remove_if_unused(Path(output_dir))
        raise
    for r in rendered:
        print(f"melforge: wrote {r.wav} and {r.png} (NLL {r.nll_per_element:.4f} nats/element, {r.seconds:.1f} s)", file=sys.stderr)
        if r.tier_nll_per_element and r.tiers_png is not None:
            tiers = ", ".join(f"tier {g} {v:.4f}" for g, v in enumerate(r.tier_nll_per_element, start=1))
            print(f"melforge:   per tier (nats/element): {tiers}; stages in {r.tiers_png}", file=sys.stderr)


def remove_if_unused(run_dir: Path) -> None:
    """Remove a sampling run's folder that holds only what Hydra wrote at start (``.hydra/`` and
    an empty log): a failed ``melforge-sample`` leaves no empty ``runs/samples/<date>/`` behind."""
    hydra_only = {".hydra", "app.log", "sample.log"}
    if run_dir.is_dir() and not (run_dir / "samples").exists() and {p.name for p in run_dir.iterdir()} <= hydra_only:
        if all((run_dir / n).stat().st_size == 0 for n in hydra_only - {".hydra"} if (run_dir / n).exists()):
            shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/sample.yaml``)."""
    run_hydra_app("melforge-sample", "sample", _task, check_sample_config, SampleApp)


if __name__ == "__main__":
    main()
