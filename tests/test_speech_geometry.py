"""One mel geometry from model to vocoder (issue 20, item 5): the default MelNet twins and
``pg_vocoder_speech_tiny`` share the speech geometry, ``pg_vocoder_tiny`` and the documented
music override share the music one, and the README's main job is followed by one command that
renders its sample through the trained speech vocoder (run here with tiny overrides)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

#: The keys that make a log-mel geometry (what invert_mel compares).
GEOMETRY = ("name", "sr", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax", "floor")


def _geometry(cfg: dict) -> dict:
    return {k: cfg["representation"][k] for k in GEOMETRY}


@pytest.mark.parametrize("twin", ["speech_tiny", "speech_tiers_tiny", "tier_ablation"])
def test_the_speech_twins_and_the_speech_vocoder_share_one_geometry(compose_train, twin):
    speech = _geometry(compose_train("experiment=pg_vocoder_speech_tiny"))
    assert _geometry(compose_train(f"experiment={twin}")) == speech
    assert speech["sr"] == 16000 and speech["n_mels"] == 64 and speech["fmax"] == 8000.0


def test_the_documented_music_override_has_the_music_vocoders_geometry(compose_train):
    music = _geometry(compose_train("experiment=pg_vocoder_tiny"))
    piano = _geometry(compose_train("experiment=piano_tiny", "representation.n_mels=80", "representation.fmax=11025"))
    assert piano == music and music["sr"] == 22050 and music["n_mels"] == 80


def test_the_speech_vocoder_trains_on_speech(compose_train):
    cfg = compose_train("experiment=pg_vocoder_speech_tiny")
    assert cfg["trains"] == "inverter" and cfg["inverter"]["name"] == "pg_vocoder"
    assert cfg["dataset"]["name"] == "asterisk_prompts" and cfg["dataset"]["languages"] == ["en"]


#: The main job, tiny (as tests/test_readme.py's TINY).
TINY = ("backbone.hidden_size=8", "backbone.layers=1", "head.components=2", "data.crop_frames=8",
        "data.valid_crops=2", "train.batch_size=2", "train.max_steps=2", "train.valid_every=2",
        "train.checkpoint_every=2", "sample.frames=8", "inverter.n_iter=2", "threads=1")
#: The speech vocoder, tiny: 2 layers of 8 channels, 2 steps.
TINY_VOCODER = ("inverter.channels=8", "inverter.layers=2", "data.crop_frames=16", "data.valid_crops=2",
                "train.batch_size=2", "train.max_steps=2", "train.valid_every=2", "train.checkpoint_every=2",
                "threads=1")


def _app(name: str, *args: str, cwd) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", f"melforge.core.cli.{name}", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_the_main_jobs_sample_renders_through_the_speech_vocoder(tmp_path):
    main = _app("train", *TINY, "hydra.run.dir=runs/speech_tiny/now", cwd=tmp_path)
    sample = tmp_path / "runs/speech_tiny/now/samples/sample_000.npy"
    assert sample.is_file()
    assert "samples/sample_000.wav, inverted with griffin_lim" in main.stderr  # the end-of-training line names it
    _app("train", "experiment=pg_vocoder_speech_tiny", *TINY_VOCODER, "hydra.run.dir=runs/pg_vocoder_speech_tiny/now",
         cwd=tmp_path)
    vocoder = "runs/pg_vocoder_speech_tiny/now/checkpoints/last.pt"
    assert json.loads((tmp_path / "runs/pg_vocoder_speech_tiny/now/metrics.json").read_text())["steps"] == 2
    proc = _app("invert", f"input={sample.relative_to(tmp_path)}", "output=vocoded.wav", "inverter=pg_vocoder",
                f"inverter.checkpoint={vocoder}", cwd=tmp_path)
    audio, sr = sf.read(tmp_path / "vocoded.wav")
    frames = np.load(sample).shape[0]
    assert sr == 16000 and abs(len(audio) - frames * 256) <= 1024 and np.isfinite(audio).all()
    assert "[pg_vocoder, log_mel]" in proc.stdout
