"""``melforge-sample checkpoint=PATH``: draw spectrograms from a saved checkpoint, plot and
invert them.

    melforge-sample checkpoint=runs/speech_tiny/<date>/checkpoints/last.pt sample.count=2 sample.temperature=0.8
    melforge-sample checkpoint=... sample.prime_frames=32 sample.prime_audio=my.wav   # priming (§6)
    melforge-sample checkpoint=... sample.speaker=fr                                  # a speaker-conditioned model
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
from melforge.core.features import FeatureCorpus
from melforge.core.normalization import Normalizer
from melforge.core.plugins import registries
from melforge.core.samples import prime_from_features, render_samples
from melforge.core.speakers import SpeakerVocabulary


def sample_from_checkpoint(checkpoint: str | Path, out_dir: str | Path, sample_cfg: dict, inverter_cfg: dict | None = None):
    """Rebuild the model of ``checkpoint`` and render ``sample_cfg["count"]`` samples into
    ``out_dir`` (see :func:`melforge.core.samples.render_samples`). ``inverter_cfg`` overrides
    the checkpoint's inverter when given.

    ``sample_cfg`` keys: ``count``, ``frames``, ``temperature`` (one value or one per tier),
    ``seed``, and optionally ``speaker`` (a label of a speaker-conditioned model),
    ``prime_frames`` (continue the first frames of ``prime_audio``, or of the first validation
    clip of the checkpoint's dataset when ``prime_audio`` is null).

    Raises:
        ValueError: a shape that does not divide into the model's tiers, or priming audio that
            is too short (named).
        KeyError: an unknown ``speaker``.
    """
    state = load_checkpoint(checkpoint)
    cfg = state["config"]
    regs = registries()
    representation = regs.representation.build(cfg["representation"])
    speakers = SpeakerVocabulary(state["speakers"]) if state.get("speakers") else None
    model = build_model(cfg, regs, cond_features=len(speakers) if speakers else 0, bins=representation.n_bins)
    model.load_state_dict(state["model"])
    inverter = regs.inverter.build(inverter_cfg or cfg["inverter"])
    normalizer = Normalizer.from_state_dict(state["normalizer"])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    frames = int(sample_cfg["frames"])
    model.schedule.check(frames, representation.n_bins, what="sample.frames")
    prime, prime_speaker = None, None
    prime_frames = int(sample_cfg.get("prime_frames", 0) or 0)
    if prime_frames:
        if prime_frames % model.schedule.time_factor or prime_frames >= frames:
            raise ValueError(
                f"sample.prime_frames={prime_frames}: must be a multiple of {model.schedule.time_factor} "
                f"and less than sample.frames={frames}"
            )
        valid, valid_speakers = [], []
        if not sample_cfg.get("prime_audio"):
            corpus = FeatureCorpus.build(
                regs.dataset.build(cfg["dataset"]), representation,
                valid_fraction=float(cfg["data"]["valid_fraction"]), trim_db=cfg["data"].get("trim_db"),
            )
            valid, valid_speakers = corpus.valid, corpus.valid_speakers
        prime, prime_speaker = prime_from_features(
            valid, valid_speakers, normalizer, prime_frames, sample_cfg.get("prime_audio"), representation
        )
    return render_samples(
        model, representation, normalizer, inverter, out_dir,
        count=int(sample_cfg["count"]), frames=frames,
        temperature=sample_cfg["temperature"], seed=int(sample_cfg["seed"]),
        speakers=speakers, speaker=sample_cfg.get("speaker") or prime_speaker, prime=prime,
    )


@hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name="sample")
def _app(cfg: DictConfig) -> None:
    if cfg.checkpoint is None:
        raise SystemExit("melforge-sample: give checkpoint=PATH (a .pt file written by melforge-train)")
    out_dir = Path(HydraConfig.get().runtime.output_dir) / "samples"
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    for r in sample_from_checkpoint(cfg.checkpoint, out_dir, plain["sample"], plain.get("inverter")):
        print(f"melforge: wrote {r.wav} and {r.png} (NLL {r.nll_per_element:.4f} nats/element, {r.seconds:.1f} s)", file=sys.stderr)
        if r.tier_nll_per_element:
            tiers = ", ".join(f"tier {g} {v:.4f}" for g, v in enumerate(r.tier_nll_per_element, start=1))
            print(f"melforge:   per tier (nats/element): {tiers}; stages in {r.tiers_png}", file=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
