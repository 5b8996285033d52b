"""Checkpoints are read with torch.load(weights_only=True): a crafted file is refused, never run."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch

from melforge.core.checkpoint import CheckpointError, check_plain, load_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this runs ``os.system`` (the classic pickle exploit)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plain_state() -> dict:
    return {
        "step": 3,
        "model": {"w": torch.zeros(2, 2)},
        "config": {"train": {"lr": 1e-4}, "tiers": {"layers": None}},
        "normalizer": {"mean": [0.0, 1.0], "std": [1.0, 2.0]},
        "speakers": ["en", "fr"],
        "metrics": {"recent_train_nll": {"1": [1.0, 2.0]}},
    }


def test_plain_checkpoint_round_trips(tmp_path):
    save_checkpoint(tmp_path, 3, _plain_state())
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 3 and state["speakers"] == ["en", "fr"]
    assert torch.equal(state["model"]["w"], torch.zeros(2, 2))


def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    state = _plain_state()
    state["unused"] = _Payload(str(marker))  # hidden in a key nothing reads
    path = tmp_path / "last.pt"
    with open(path, "wb") as fh:
        pickle.dump(state, fh)  # what torch.save writes for a dict, payload included
    torch.save(state, tmp_path / "torch_saved.pt")
    for p in (path, tmp_path / "torch_saved.pt"):
        with pytest.raises(CheckpointError, match=str(p.name)):
            load_checkpoint(p)
    assert not marker.exists(), "loading a checkpoint ran code from the file"


def test_malicious_checkpoint_via_melforge_sample_exits_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    state = _plain_state()
    state["unused"] = _Payload(str(marker))
    path = tmp_path / "evil.pt"
    torch.save(state, path)
    proc = subprocess.run(
        [sys.executable, "-m", "melforge.core.cli.sample", f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "evil.pt" in proc.stderr
    assert not marker.exists()


def test_saving_a_non_plain_object_is_refused_before_writing(tmp_path):
    state = _plain_state()
    state["normalizer"] = object()
    with pytest.raises(CheckpointError, match=r"normalizer"):
        save_checkpoint(tmp_path, 1, state)
    assert not list(tmp_path.glob("*.pt"))
    with pytest.raises(CheckpointError, match=r"\[0\]"):
        check_plain([{1.5: 2}])
