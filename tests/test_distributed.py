"""Data-parallel training (gloo, 2 processes on the CPU) on the real speech corpus, the
launchers' environments, and a sweep through Hydra's submitit launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from melforge.core.checkpoint import load_checkpoint
from melforge.core.distributed import LaunchEnv, LaunchError, first_host, launch_env, slice_rows
from melforge.core.learners import train

#: The tiny real-data experiment of tests/conftest.py (TINY_TRAIN), 2 steps of batch 2 per rank.
TINY = ("backbone.hidden_size=16", "backbone.layers=1", "head.components=3", "data.crop_frames=12",
        "data.valid_crops=4", "train.log_every=1", "train.valid_every=2", "train.checkpoint_every=2",
        "sample.count=0", "threads=1")


def _env() -> dict:
    return dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")


#: The README's commands (tests/test_readme.py maps them to the tests below).
README_TORCHRUN = "torchrun --nproc_per_node=2 -m melforge.core.cli.train train.batch_size=4"
README_SUBMITIT = "melforge-train -m hydra/launcher=submitit_local backbone.hidden_size=8,16"


def torchrun_command(*overrides: str) -> list[str]:
    """:data:`README_TORCHRUN` with ``overrides`` after its own (``--standalone``: a free
    rendezvous port, so parallel test runs do not collide)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", *README_TORCHRUN.split()[1:], *overrides]


def test_two_ranks_at_batch_b_train_as_one_process_at_2b_and_resume_on_one_rank(tmp_path, compose_train):
    # one process, batch 4, 4 steps (checkpoint at 2 and 4)
    single = compose_train(*TINY, "train.batch_size=4", "train.max_steps=4")
    one = train(single, tmp_path / "one")
    # two ranks, batch 2 each, 2 steps: the real CLI under torchrun
    proc = subprocess.run(
        torchrun_command(*TINY, "train.batch_size=2", "train.max_steps=2", "hydra.run.dir=ddp"),
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp/metrics.json").read_text())
    assert ddp["ranks"] == 2 and ddp["steps"] == 2
    at_2 = load_checkpoint(tmp_path / "one/checkpoints/step_00000002.pt")
    assert ddp["valid_nll_step0"] == pytest.approx(one["valid_nll_step0"], rel=1e-6)
    assert ddp["valid_nll"] == pytest.approx(at_2["metrics"]["valid_nll"], rel=1e-5)
    assert ddp["train_nll"] == pytest.approx(at_2["metrics"]["recent_train"]["nll"][-1], rel=1e-5)
    ddp_state = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt")
    for name, value in at_2["model"].items():
        torch.testing.assert_close(ddp_state["model"][name], value, rtol=1e-4, atol=1e-6)
    # rank 1 wrote nothing: no second run directory, log or .hydra folder beside rank 0's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]
    assert (tmp_path / "ddp/train.log").read_text().count("valid NLL") >= 2
    # the 2-rank run resumes on 1 rank at the global batch and ends where the 1-process run did
    resumed = train(single, tmp_path / "ddp")
    assert resumed["ranks"] == 1 and resumed["steps"] == 4
    assert resumed["valid_nll"] == pytest.approx(one["valid_nll"], rel=1e-5)
    assert resumed["train_nll"] == pytest.approx(one["train_nll"], rel=1e-5)


def test_launch_env_from_torchrun_slurm_or_nothing():
    assert launch_env({}) == LaunchEnv()
    assert launch_env({"WORLD_SIZE": "1", "RANK": "0"}) == LaunchEnv()
    torchrun = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "29400"}
    assert launch_env(torchrun) == LaunchEnv(3, 4, 1, "n1", 29400, "torchrun")
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODELIST": "gpu[07-09,12]",
             "SLURM_JOB_ID": "123456"}
    assert launch_env(slurm) == LaunchEnv(5, 8, 1, "gpu07", 15000 + 123456 % 20000, "slurm")
    assert launch_env({**slurm, "MASTER_ADDR": "head", "MASTER_PORT": "1234"}).master_addr == "head"
    assert launch_env({**slurm, "SLURM_NTASKS": "1"}) == LaunchEnv()  # one task: no process group
    assert launch_env({**slurm, **torchrun}).launcher == "torchrun"  # torchrun inside a SLURM allocation
    with pytest.raises(LaunchError, match="SLURM_PROCID"):
        launch_env({**slurm, "SLURM_PROCID": "x"})
    with pytest.raises(LaunchError, match="outside a world of 8"):
        launch_env({**slurm, "SLURM_PROCID": "8"})
    with pytest.raises(LaunchError, match="SLURM_NODELIST"):
        launch_env({k: v for k, v in slurm.items() if k != "SLURM_NODELIST"})


def test_first_host_of_slurm_node_lists():
    assert first_host("node5") == "node5"
    assert first_host("gpu[07-09,12],cpu1") == "gpu07"
    assert first_host("a-b[3]") == "a-b3"
    assert first_host("x1,x2") == "x1"


def test_slice_rows_keeps_each_ranks_contiguous_share_of_every_field():
    x, lengths, labels = torch.arange(12.0).reshape(6, 2), torch.tensor([4, 4, 2, 2, 2, 2]), list("abcdef")
    assert slice_rows((x, lengths, labels), 0, 1)[2] is labels
    x1, l1, s1 = slice_rows((x, lengths, labels), 1, 3)
    assert x1.tolist() == [[4.0, 5.0], [6.0, 7.0]] and l1.tolist() == [2, 2] and s1 == ["c", "d"]
    assert slice_rows((x, None, labels), 2, 3)[1] is None
    with pytest.raises(ValueError, match="does not split evenly over 4 ranks"):
        slice_rows((x,), 0, 4)


def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path):
    tiny = [o for o in TINY if not o.startswith("backbone.hidden_size=")]  # the sweep sets it
    proc = subprocess.run(
        [sys.executable, "-m", "melforge.core.cli.train", *README_SUBMITIT.split()[1:], *tiny, "train.batch_size=2",
         "train.max_steps=2", "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [yaml.safe_load((j / "config.yaml").read_text())["backbone"]["hidden_size"] for j in jobs] == [8, 16]
    metrics = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert all(m["steps"] == 2 and m["valid_nll"] < m["valid_nll_step0"] for m in metrics)
    assert (tmp_path / "sweep/.submitit").is_dir()  # the jobs went through submitit
