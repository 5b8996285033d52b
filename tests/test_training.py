"""Training runner on the real speech corpus: exact resume, divergence handling, the Hydra
apps end to end, config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.multiscale import MultiscaleModel
from melforge.core.training import TrainingDiverged, train


def _params(path):
    return load_checkpoint(path)["model"]


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, compose_train, tiny_train):
    straight = compose_train(*tiny_train, "train.max_steps=4")
    train(straight, tmp_path / "straight")
    first_half = compose_train(*tiny_train, "train.max_steps=2")
    train(first_half, tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["step"] == 2
    train(straight, tmp_path / "resumed")  # same run dir: resumes from step 2
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["metrics"]["valid_nll_step0"] == b["metrics"]["valid_nll_step0"]
    # and training really moved the parameters
    fresh = load_checkpoint(tmp_path / "resumed/checkpoints/step_00000002.pt")["model"]
    assert any(not torch.equal(fresh[k], v) for k, v in a["model"].items())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, compose_train, tiny_train, monkeypatch):
    cfg = compose_train(*tiny_train, "train.max_steps=6")
    real_nlls = MultiscaleModel.tier_nlls
    calls = {"n": 0}

    def flaky_nlls(self, x, cond=None, tiers=None):
        calls["n"] += 1
        nlls = real_nlls(self, x, cond, tiers)
        return {g: v * float("nan") for g, v in nlls.items()} if calls["n"] == 4 else nlls

    monkeypatch.setattr(MultiscaleModel, "tier_nlls", flaky_nlls)
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, tmp_path)
    message = str(err.value)
    assert "non-finite loss" in message and "step 4" in message and "(step 2) is intact" in message
    last = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert last["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert not (tmp_path / "metrics.json").exists()


def _run(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_train_and_sample_commands_write_a_complete_run(tmp_path, tiny_train):
    run = tmp_path / "run"
    proc = _run(
        "melforge.core.cli.train",
        *tiny_train,
        "train.max_steps=30",
        "train.valid_every=10",
        "train.checkpoint_every=10",
        "sample.count=1",
        "sample.frames=12",
        "inverter.n_iter=4",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("valid_nll_step0", "valid_nll", "train_nll", "valid_bits", "train_bits"):
        assert np.isfinite(metrics[key]), key
    assert metrics["steps"] == 30
    assert metrics["valid_nll"] < metrics["valid_nll_step0"] - 0.1
    assert (run / "config.yaml").exists() and (run / "checkpoints/last.pt").exists()
    assert any((run / "tensorboard").iterdir())
    png, wav = run / "samples/sample_000.png", run / "samples/sample_000.wav"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    audio, sr = sf.read(wav)
    assert sr == 16000 and len(audio) == 11 * 256 and np.abs(audio).max() > 1e-3

    out = tmp_path / "sampled"
    proc = _run(
        "melforge.core.cli.sample",
        f"checkpoint={run / 'checkpoints/last.pt'}",
        "sample.frames=6",
        "sample.count=2",
        "inverter.n_iter=2",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "samples").glob("*.wav")) == ["sample_000.wav", "sample_001.wav"]


def test_unknown_config_key_is_an_error_naming_the_key(tmp_path):
    proc = _run("melforge.core.cli.train", "train.max_stepz=3", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "max_stepz" in proc.stderr
    proc = _run("melforge.core.cli.train", "+backbone.hiden_size=3", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "'hiden_size'" in proc.stderr and "melnet" in proc.stderr
    proc = _run("melforge.core.cli.train", "dataset=audio_folder", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "Missing mandatory value" in proc.stderr and "dataset.root" in proc.stderr


def test_missing_checkpoint_is_an_error_naming_the_file(tmp_path):
    proc = _run("melforge.core.cli.sample", f"checkpoint={tmp_path / 'nope.pt'}", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "nope.pt does not exist" in proc.stderr
