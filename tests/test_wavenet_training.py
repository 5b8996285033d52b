"""The WaveNet baseline through the same runner as MelNet: real speech, the optimizer config,
checkpoints and exact resume, samples written as WAV + PNG with no inverter in the path."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.learners import train

TINY_WAVENET = (
    "experiment=wavenet_speech_tiny",
    "backbone.layers=4",
    "backbone.residual_channels=8",
    "backbone.skip_channels=16",
    "data.crop_frames=400",
    "data.valid_crops=4",
    "train.batch_size=2",
    "train.log_every=1",
    "train.valid_every=3",
    "train.checkpoint_every=3",
    "sample.frames=800",
    "threads=1",
)


def test_wavenet_speech_tiny_trains_on_real_speech_and_writes_audio(tmp_path, compose_train):
    cfg = compose_train(*TINY_WAVENET, "train.max_steps=24", "train.valid_every=12", "train.checkpoint_every=12")
    assert cfg["optimizer"]["name"] == "adam" and cfg["optimizer"]["lr"] == 1e-3  # Appendix A.2
    assert cfg["representation"]["name"] == "mu_law" and cfg["head"]["name"] == "categorical"
    metrics = train(cfg, tmp_path)
    assert metrics["samplers"] == ["WaveNetCompiledSampler"]
    assert np.log(256) - 0.1 < metrics["valid_nll_step0"] < np.log(256) + 1.0  # an untrained softmax: near uniform
    assert metrics["valid_nll"] < metrics["valid_nll_step0"]
    audio, sr = sf.read(tmp_path / "samples/sample_000.wav")
    assert sr == 16000 and audio.shape == (800,) and np.sqrt(np.mean(audio**2)) > 1e-3
    assert (tmp_path / "samples/sample_000.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(np.load(tmp_path / "samples/sample_000.npy").shape, (800, 1))
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 24


def test_wavenet_resume_is_exact(tmp_path, compose_train):
    straight = train(compose_train(*TINY_WAVENET, "train.max_steps=6", "sample.count=0"), tmp_path / "a")
    train(compose_train(*TINY_WAVENET, "train.max_steps=3", "sample.count=0"), tmp_path / "b")
    resumed = train(compose_train(*TINY_WAVENET, "train.max_steps=6", "sample.count=0"), tmp_path / "b")
    a = load_checkpoint(tmp_path / "a/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight["valid_nll"] == resumed["valid_nll"]
