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


def test_overflowing_silent_and_nan_audio_is_skipped_by_name_and_reported_in_the_run(tmp_path, compose_train, tiny_train, speech_clips, monkeypatch):
    import json

    import soundfile as sf

    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "audio"
    folder.mkdir()
    for k, clip in enumerate(speech_clips[:12]):
        sf.write(folder / f"clip{k:02d}.wav", clip.audio, clip.sr, subtype="FLOAT")
    loud = speech_clips[0].audio.astype("float32") * 1e30  # finite, but its power overflows
    sf.write(folder / "loud.wav", loud, 16000, subtype="FLOAT")
    sf.write(folder / "silence.wav", speech_clips[0].audio * 0, 16000, subtype="FLOAT")
    nan = speech_clips[1].audio.copy()
    nan[100] = float("nan")
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    for trim in ("60", "null"):
        run = tmp_path / f"run_trim_{trim}"
        for attempt in range(2):  # the second run reuses the feature cache and still reports the skips
            cfg = compose_train(*tiny_train, "dataset=audio_folder", f"dataset.root={folder}", "train.max_steps=2",
                                "data.valid_fraction=0.3", f"data.trim_db={trim}", f"train.resume={'false' if attempt else 'true'}")
            metrics = train(cfg, run)
            assert all(v == v for k, v in metrics.items() if k.startswith("valid_nll"))  # no NaN metric
            skipped = {item["id"]: item["reason"] for item in json.loads((run / "skipped.json").read_text())["skipped"]}
            assert any("loud" in k for k in skipped), skipped
            assert any("silence" in k and "digital silence" in v for k, v in skipped.items()), skipped
            assert any("nan" in k for k in skipped), skipped
            assert len(skipped) == 3


def test_a_non_finite_validation_metric_is_refused_with_its_cause(tmp_path):
    from melforge.core.reporting import NonFiniteMetric, Reporter

    reporter = Reporter(tmp_path, [(4, 4)], 1, 0, 10, {})
    try:
        with pytest.raises(NonFiniteMetric, match="valid_nll at step 3 is not finite"):
            reporter.validation(3, {1: float("nan")})
        assert "valid_nll" not in reporter.metrics
    finally:
        reporter.close()
