"""The §6.5 multiscale ablation ships as a sweep (issue 10 §1): ``-m experiment=tier_ablation
tiers=...`` trains each tier count at equal steps into ``multirun/tier_ablation/<time>/``,
one job folder per override set, and ``melforge-report`` tabulates it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import yaml

#: The README's commands (run here with tiny overrides).
README_SWEEP = "melforge-train -m experiment=tier_ablation tiers=two,three,four,five"
README_REPORT = "melforge-report multirun/tier_ablation/<time>"
TINY = ("backbone.hidden_size=8", "head.components=2", "data.crop_frames=16", "data.valid_crops=2",
        "train.batch_size=2", "train.max_steps=2", "train.log_every=1", "train.valid_every=2",
        "train.checkpoint_every=2", "sample.frames=16", "inverter.n_iter=2", "threads=1")


def _run(app: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", f"melforge.core.cli.{app}", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_tier_ablation_sweep_is_named_after_the_experiment_and_reported(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert README_SWEEP in readme and README_REPORT in readme  # the commands this test runs
    args = README_SWEEP.split()[1:]
    _run("train", *args[:-1], "tiers=two,five", *TINY, cwd=tmp_path)  # the smallest and the largest
    sweeps = list((tmp_path / "multirun/tier_ablation").iterdir())
    assert len(sweeps) == 1  # multirun/<experiment>/<time>
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0_tiers=two", "1_tiers=five"]  # named by what varies
    layers = [yaml.safe_load((sweeps[0] / j / "config.yaml").read_text())["tiers"]["layers"] for j in jobs]
    assert layers == [[2, 1], [2, 1, 1, 1, 1]]
    _run("report", str(sweeps[0]).replace(str(tmp_path) + "/", ""), cwd=tmp_path)
    rows = list(csv.DictReader((sweeps[0] / "report.csv").open()))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert {r["overrides"] for r in rows} == {"tiers=two", "tiers=five"}
    assert all(float(r["steps"]) == 2 for r in rows)  # equal training steps
    assert (sweeps[0] / "samples.png").exists() and (sweeps[0] / "report.html").exists()


def test_a_sweep_without_an_experiment_is_named_after_the_default_one(tmp_path):
    _run("train", "-m", "backbone.layers=1", *TINY, "train.max_steps=1", "train.valid_every=1",
         "train.checkpoint_every=1", "sample.count=0", cwd=tmp_path)
    assert [p.name for p in (tmp_path / "multirun").iterdir()] == ["speech_tiny"]
