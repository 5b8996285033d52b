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
    trains = cfg.get("trains") or "model"
    if trains == "inverter":  # a trainable inverter (e.g. pg_vocoder), through its learner
        from melforge.core.inverter_training import train_inverter

        metrics = train_inverter(cfg, run_dir)
        log_skip_summary(run_dir)
        logging.getLogger("melforge.train").info(
            f"done in {run_dir}: valid loss {metrics['valid_loss_step0']:.4f} → {metrics['valid_loss']:.4f}; "
            f"train loss {metrics['train_loss']:.4f}"
        )
        return metrics["valid_loss"]
    if trains != "model":
        raise ValueError(f"trains={trains!r}: expected model or inverter")
    from melforge.core.training import train  # torch is imported after run_hydra_app set the OpenMP policy

    metrics = train(cfg, run_dir)
    log_skip_summary(run_dir)
    logging.getLogger("melforge.train").info(done_line(cfg, run_dir, metrics))
    return metrics["valid_nll"]


def log_skip_summary(run_dir: str) -> None:
    """One warning line, ``6 files skipped, see <run>/skipped.json``, when the run's data left
    clips out: also on a run that read its features from the cache, where the per-file warnings
    of the first analysis are not repeated (the runner writes ``skipped.json`` on every run)."""
    import json
    from pathlib import Path

    path = Path(run_dir) / "skipped.json"
    try:
        skipped = json.loads(path.read_text()).get("skipped") or []
    except (OSError, ValueError):  # rank > 0, or no data read: nothing to sum up
        return
    if skipped:
        noun = "file" if len(skipped) == 1 else "files"
        logging.getLogger("melforge.train").warning(f"{len(skipped)} {noun} skipped, see {path}")


def done_line(cfg: dict, run_dir: str, metrics: dict) -> str:
    """The end-of-training line: the run folder, the NLLs, and the first sample's WAV with the
    inverter that rendered it (a waveform representation needs none).

    Args:
        cfg: the run's resolved config (``representation``, ``inverter``).
        metrics: what :func:`melforge.core.training.train` returned (``samples``: the rendered
            samples' summaries, when any were drawn).
    """
    line = (f"done in {run_dir}: valid NLL {metrics['valid_nll_step0']:.4f} → {metrics['valid_nll']:.4f} "
            f"nats/element ({metrics['valid_bits']:.4f} bits); train NLL {metrics['train_nll']:.4f}")
    samples = metrics.get("samples") or []
    if samples:
        more = f" (and {len(samples) - 1} more)" if len(samples) > 1 else ""
        # A representation of frames of several samples (hop_length > 1) is a spectrogram, turned into
        # audio by the inverter; a waveform representation (one frame per sample) decodes directly.
        spectral = int(cfg["representation"].get("hop_length") or 1) > 1
        how = f"inverted with {cfg['inverter']['name']}" if spectral else f"decoded by {cfg['representation']['name']}"
        line += f"; sample {samples[0]['wav']}{more}, {how}"
    return line


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/train.yaml``)."""
    run_hydra_app("melforge-train", "train", _task, check_train_config, TrainApp)


if __name__ == "__main__":
    main()
