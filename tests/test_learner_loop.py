"""The one training loop over a learner with two optimisers (tests/support/toy_gan.py, a toy
adversarial learner that lives here and not in core): exact resume after a cut and after
``kill -9``, schedules, and two gloo ranks under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.training import train

sys.path.insert(0, str(Path(__file__).parent / "support"))
from toy_gan import ToyGan, config  # noqa: E402

SCRIPT = Path(__file__).parent / "support" / "toy_gan.py"


def _run(run_dir: Path, steps: int) -> dict:
    return train(config(steps), run_dir, lambda cfg, state: ToyGan(cfg))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in ("discriminator", "generator"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for k in sa:
            for field in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(sa[k][field], sb[k][field]), (name, k, field)
        assert a["schedulers"][name] == b["schedulers"][name]


def test_two_optimisers_train_with_their_schedules_and_resume_bit_exactly(tmp_path):
    straight = _run(tmp_path / "straight", 6)
    _run(tmp_path / "cut", 3)
    resumed = _run(tmp_path / "cut", 6)
    a, b = load_checkpoint(tmp_path / "straight/checkpoints/last.pt"), load_checkpoint(tmp_path / "cut/checkpoints/last.pt")
    _assert_same_state(a, b)
    assert resumed["valid_d_loss"] == straight["valid_d_loss"] and resumed["train_g_loss"] == straight["train_g_loss"]
    # each optimiser has its own schedule: the discriminator's decays by 0.99 a step, the generator's warms up
    lrs = {n: [g["lr"] for g in a["optimizers"][n]["param_groups"]][0] for n in ("discriminator", "generator")}
    assert lrs["discriminator"] == pytest.approx(2e-3 * 0.99**6)
    assert lrs["generator"] == pytest.approx(2e-3)
    at_1 = load_checkpoint(tmp_path / "cut/checkpoints/step_00000002.pt")
    assert at_1["optimizers"]["generator"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * (1 / 3 + (2 / 3) * (2 / 3)))  # linear warm-up, 2 of 3 steps
    # both optimisers stepped: both networks moved away from their initialisation
    init = ToyGan(config(0)).net.state_dict()
    assert all(not torch.equal(init[k], a["model"][k]) for k in init)
    metrics = json.loads((tmp_path / "straight/metrics.json").read_text())
    assert metrics["trains"] == "toy_gan" and metrics["monitor"] == "d_loss"
    assert {"valid_d_loss_step0", "valid_mean_error", "train_g_loss", "best_valid_d_loss"} <= set(metrics)


def test_kill_9_mid_training_then_resume_ends_on_the_uninterrupted_weights(tmp_path):
    _run(tmp_path / "straight", 8)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / "killed"), "8", "0.4"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed/checkpoints/last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (last.exists() and load_checkpoint(last)["step"] >= 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(last)["step"] < 8  # it really was cut short
    _run(tmp_path / "killed", 8)
    _assert_same_state(load_checkpoint(tmp_path / "straight/checkpoints/last.pt"), load_checkpoint(last))


def test_two_gloo_ranks_train_the_adversarial_learner(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
         str(tmp_path / "ddp"), "4"], env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp/metrics.json").read_text())
    assert metrics["ranks"] == 2 and metrics["steps"] == 4
    state = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt")
    assert state["step"] == 4 and set(state["optimizers"]) == {"discriminator", "generator"}
    # rank 0 alone wrote: one run directory; its resume on one process continues where the ranks stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]
    more = _run(tmp_path / "ddp", 6)
    assert more["steps"] == 6 and more["ranks"] == 1
