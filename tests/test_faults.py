"""Fault injection (issue 9): divergence, concurrent writers, resumes that change the config."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.divergence import DivergenceDetector
from melforge.core.run_dir import ResumeMismatch, RunDirectoryBusy, locked_run_dir
from melforge.core.training import TrainingDiverged, train


def test_detector_ignores_noise_and_catches_a_jump():
    detector = DivergenceDetector(window=20, threshold=10.0, min_excess=5.0)
    gen = torch.Generator().manual_seed(0)
    losses = (2.0 - 0.01 * torch.arange(60) + 0.1 * torch.randn(60, generator=gen)).tolist()
    assert not any(detector.update(step, loss).diverged for step, loss in enumerate(losses, start=1))
    assert detector.last_healthy_step == 60
    verdict = detector.update(61, 40.0)
    assert verdict.diverged and "above the median" in verdict.reason
    assert detector.update(62, float("nan")).diverged
    assert detector.update(63, 1.0, grad_norm=float("inf")).diverged
    # a rise of more than half the margin is suspect (not checkpointed) but not yet divergence
    suspect = detector.update(64, losses[-1] + 3.0)
    assert suspect.suspect and not suspect.diverged and detector.last_healthy_step == 60


@pytest.mark.parametrize("lr", [10.0, 1000.0])
def test_a_large_learning_rate_stops_naming_the_step_and_never_checkpoints_the_blow_up(tmp_path, compose_train, tiny_train, lr):
    cfg = compose_train(*tiny_train, "train.max_steps=30", "train.checkpoint_every=1", f"optimizer.lr={lr}")
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, tmp_path)
    message = str(err.value)
    assert "training diverged at step" in message and "began at step" in message
    onset = int(message.split("began at step ")[1].split(",")[0])
    stopped = int(message.split("diverged at step ")[1].split(":")[0])
    assert onset <= stopped < 30
    if (tmp_path / "checkpoints/last.pt").exists():
        last = load_checkpoint(tmp_path / "checkpoints/last.pt")
        assert last["step"] < onset, "a state from after the onset of the divergence became last.pt"
        assert f"(step {last['step']})" in message
        for path in (tmp_path / "checkpoints").glob("step_*.pt"):
            assert int(path.stem.split("_")[1]) < onset
    assert not (tmp_path / "metrics.json").exists()


def test_a_second_training_in_the_same_directory_fails_at_once_naming_the_first(tmp_path, tiny_train):
    with locked_run_dir(tmp_path):
        with pytest.raises(RunDirectoryBusy, match=f"PID {os.getpid()}"):
            with locked_run_dir(tmp_path):
                pass
        proc = subprocess.run(
            [sys.executable, "-m", "melforge.core.cli.train", *tiny_train, "train.max_steps=2", f"hydra.run.dir={tmp_path}"],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode != 0 and f"PID {os.getpid()}" in proc.stderr
        assert not (tmp_path / "checkpoints").exists()
    with locked_run_dir(tmp_path):  # released when the holder leaves
        pass


def test_resume_refuses_another_architecture_before_touching_the_directory(tmp_path, compose_train, tiny_train):
    train(compose_train(*tiny_train, "train.max_steps=2"), tmp_path)
    before = (tmp_path / "config.yaml").read_text()
    changed = compose_train(*tiny_train, "train.max_steps=4", "backbone.hidden_size=8", "data.crop_frames=16")
    with pytest.raises(ResumeMismatch) as err:
        train(changed, tmp_path)
    assert "backbone.hidden_size: 16 → 8" in str(err.value) and "data.crop_frames: 12 → 16" in str(err.value)
    assert (tmp_path / "config.yaml").read_text() == before
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == 2


def test_resume_applies_a_changed_learning_rate_and_logs_it(tmp_path, compose_train, tiny_train, capsys):
    train(compose_train(*tiny_train, "train.max_steps=2"), tmp_path)
    train(compose_train(*tiny_train, "train.max_steps=4", "optimizer.lr=0.0005"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert state["step"] == 4
    assert all(group["lr"] == 0.0005 for group in state["optimizer"]["param_groups"])
    assert "optimizer.lr: 0.0001 → 0.0005" in capsys.readouterr().err
    assert "lr: 0.0005" in (tmp_path / "config.yaml").read_text()
