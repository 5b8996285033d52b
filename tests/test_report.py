"""``melforge-report``: a real sweep of two finished jobs, a failed one and a running one becomes a
table (Markdown, CSV), curves, a sample figure and a self-contained HTML page."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _tiny_train() -> tuple[str, ...]:
    """conftest.TINY_TRAIN (the module-scoped sweep cannot take the function-scoped fixture)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_report_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TINY_TRAIN


TINY_TRAIN = _tiny_train()

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Two jobs that differ in one key (the sweep's override), sampled so there are audio and images.
SWEEP = ("backbone.hidden_size=8", "backbone.hidden_size=12")
COMMON = (*(o for o in TINY_TRAIN if not o.startswith(("backbone.hidden_size=", "sample.count="))),
          "train.max_steps=4", "sample.count=1", "sample.frames=8", "inverter.n_iter=2")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep directory: jobs 0 and 1 trained in-process (with the ``.hydra/overrides.yaml``
    Hydra writes), job 2 failed (checkpoints and a log, no metrics.json, a NaN in TensorBoard),
    job 3 'running' (copied from job 0 without metrics.json; the test holds its lock)."""
    import torch
    import yaml
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.learners import train

    root = tmp_path_factory.mktemp("report") / "sweep"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for num, override in enumerate(SWEEP):
            overrides = [*COMMON, override]
            with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
                cfg = OmegaConf.to_container(compose(config_name="train", overrides=overrides), resolve=True)
            job = root / f"{num}_{override}"
            train(cfg, job)
            (job / ".hydra").mkdir()
            (job / ".hydra/overrides.yaml").write_text(yaml.safe_dump(overrides))
    finally:
        torch.set_num_threads(threads)

    done = root / f"0_{SWEEP[0]}"
    failed = root / "2_backbone.hidden_size=16"
    failed.mkdir()
    cfg = yaml.safe_load((done / "config.yaml").read_text())
    cfg["backbone"]["hidden_size"] = 16  # no overrides.yaml: labelled from config.yaml's differing keys
    (failed / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(done / "checkpoints", failed / "checkpoints")
    (failed / "train.log").write_text("starting\nTrainingDiverged: training diverged at step 3\n\n")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(failed / "tensorboard"))
    writer.add_scalar("valid/nll", 1.7, 0)
    writer.add_scalar("valid/nll", float("nan"), 2)
    writer.add_scalar("train/nll", float("nan"), 2)
    writer.close()

    running = root / "3_running"
    running.mkdir()
    for name in ("config.yaml", "checkpoints", "tensorboard", ".hydra"):
        src = done / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, running / name)
    (running / "tensorboard_empty").mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    (root / "not_a_job").mkdir()  # no run files: ignored
    return root


@pytest.fixture(scope="module")
def report(sweep):
    from melforge.core.report import write_report
    from melforge.core.run_dir import locked_run_dir

    with locked_run_dir(sweep / "3_running"):
        jobs, paths = write_report(sweep)
    return jobs, paths


def _csv_rows(sweep: Path) -> list[dict]:
    with open(sweep / "report.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_table_rows_statuses_and_values(sweep, report):
    jobs, paths = report
    assert set(paths) == {"report.md", "report.csv", "curves.png", "samples.png", "report.html"}
    rows = _csv_rows(sweep)
    assert [r["job"] for r in rows] == [f"0_{SWEEP[0]}", f"1_{SWEEP[1]}", "2_backbone.hidden_size=16", "3_running"]
    assert [r["status"] for r in rows] == ["done", "done", "failed", "running"]
    # the label is what tells the jobs apart; the common overrides are not repeated
    # (job 3, a copy of job 0, has the same overrides: the directory tells the two apart)
    assert rows[0]["overrides"] == f"{SWEEP[0]} [{rows[0]['job']}]" and rows[1]["overrides"] == SWEEP[1]
    assert rows[3]["overrides"] == f"{SWEEP[0]} [3_running]"
    assert rows[2]["overrides"] == "backbone.hidden_size=16"
    assert "train.max_steps=4" in rows[0]["all_overrides"]
    assert "TrainingDiverged: training diverged at step 3" in rows[2]["reason"]
    for row, override in zip(rows[:2], SWEEP):
        job = sweep / row["job"]
        m = json.loads((job / "metrics.json").read_text())
        assert float(row["valid_nll"]) == pytest.approx(m["valid_nll"], rel=1e-12)
        assert float(row["train_nll"]) == pytest.approx(m["train_nll"], rel=1e-12)
        assert int(row["steps"]) == m["steps"] == 4
        assert float(row["wall_seconds"]) == pytest.approx(m["train_seconds_this_run"], rel=1e-12)
        assert float(row["sample_seconds"]) == pytest.approx(m["samples"][0]["seconds"], rel=1e-12)
        frames_bins = 8 * 64  # sample.frames × n_mels
        assert float(row["sample_elements_per_second"]) == pytest.approx(frames_bins / m["samples"][0]["seconds"], rel=1e-9)
        # best: the lowest of the validation points (steps 0, 2 and 4), at most the final one
        best = float(row["best_valid_nll"])
        assert best <= m["valid_nll"] + 1e-9 and best <= m["valid_nll_step0"] + 1e-9
        assert int(row["best_valid_step"]) in (0, 2, 4)
        assert row["sample_wav"] == f"{row['job']}/samples/sample_000.wav"
        assert row["sample_png"] == f"{row['job']}/samples/sample_000.png"
        assert (sweep / row["sample_npy"]).is_file()
    # parameters from last.pt: a wider backbone has more; the failed job's copy counts as job 0's
    params = [int(r["parameters"]) for r in rows]
    assert params[0] < params[1] and params[2] == params[0] == params[3]
    assert int(rows[2]["steps"]) == 4 and int(rows[3]["steps"]) == 4  # from the checkpoint
    # the failed job's NaN is shown as NaN, its best is the finite point
    assert math.isnan(float(rows[2]["valid_nll"])) and float(rows[2]["best_valid_nll"]) == pytest.approx(1.7)
    assert rows[2]["sample_wav"] == "" and rows[2]["wall_seconds"] == ""
    # the running job: the latest TensorBoard values
    assert float(rows[3]["valid_nll"]) == pytest.approx(float(rows[0]["valid_nll"]), rel=1e-6)

    md = (sweep / "report.md").read_text()
    table = [l for l in md.splitlines() if l.startswith("| ") and not l.startswith("| ---")]
    assert len(table) == 1 + 4
    assert "| failed |" in table[3] and "| running |" in table[4] and table[1].count("| done |") == 1
    assert f"{json.loads((sweep / rows[0]['job'] / 'metrics.json').read_text())['valid_nll']:.4f}" in table[1]
    assert "Overrides common to every job" in md and "TrainingDiverged" in md


def test_figures_are_pngs_and_html_is_self_contained(sweep, report):
    for name in ("curves.png", "samples.png"):
        data = (sweep / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    page = (sweep / "report.html").read_text()
    assert page.count("<audio controls") == 2 and page.count('src="data:audio/wav;base64,') == 2
    # a spectrogram per job with a sample (the failed and running jobs have none), plus the two figures
    assert page.count('src="data:image/png;base64,') == 2 + 2
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "an external reference"
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert page.count("<tr") == 1 + 4
    import base64

    audio = re.search(r'data:audio/wav;base64,([A-Za-z0-9+/=]+)', page).group(1)
    assert base64.b64decode(audio)[:4] == b"RIFF"


def test_report_of_one_run_and_a_waveform(sweep, tmp_path):
    """A single run directory is one job; a waveform sample's spectrogram is a log-mel of its WAV."""
    import numpy as np
    import soundfile as sf

    from melforge.core.report import write_report

    run = tmp_path / "run"
    shutil.copytree(sweep / f"0_{SWEEP[0]}", run)
    rng = np.random.default_rng(0)
    np.save(run / "samples/sample_000.npy", rng.integers(0, 256, (400, 1)).astype(np.float32))
    sf.write(run / "samples/sample_000.wav", rng.standard_normal(400).astype(np.float32) * 0.1, 16000)
    jobs, paths = write_report(run)
    assert len(jobs) == 1 and jobs[0].status == "done" and jobs[0].sample_kind == "waveform"
    assert jobs[0].sample_image.ndim == 2 and np.isfinite(jobs[0].sample_image).all()
    assert paths["samples.png"].read_bytes().startswith(PNG_MAGIC)
    assert list(csv.DictReader(open(run / "report.csv")))[0]["sample_wav"] == "samples/sample_000.wav"


def test_cli(sweep, tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.report", str(sweep)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2_backbone.hidden_size=16: failed" in proc.stdout and str(sweep / "report.html") in proc.stdout
    # nobody holds the lock now: the copied job without metrics.json counts as failed
    assert [r["status"] for r in _csv_rows(sweep)] == ["done", "done", "failed", "failed"]

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.report", str(empty)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("melforge-report: error: ") and str(empty) in lines[0]
    assert not (empty / "report.md").exists()


def test_broken_jobs_never_stop_the_report(sweep, tmp_path):
    """A job that died before writing anything but Hydra's files, an empty event file, a
    truncated metrics.json and a damaged checkpoint: shown as failed, with the cause."""
    from melforge.core.report import write_report

    root = tmp_path / "sweep"
    shutil.copytree(sweep / f"1_{SWEEP[1]}", root / "0_ok")
    early = root / "1_early"
    (early / ".hydra").mkdir(parents=True)
    (early / ".hydra/overrides.yaml").write_text("- backbone.hidden_size=-1\n")
    (early / "train.log").write_text("")
    broken = root / "2_broken"
    (broken / "tensorboard").mkdir(parents=True)
    (broken / "tensorboard/events.out.tfevents.0.host.0.0").write_bytes(b"")
    (broken / "checkpoints").mkdir()
    (broken / "checkpoints/last.pt").write_bytes(b"not a checkpoint")
    (broken / "metrics.json").write_text('{"valid_nll": 1.')
    (broken / "samples").mkdir()
    (broken / "samples/sample_000.npy").write_bytes(b"garbage")
    jobs, paths = write_report(root)
    assert [j.status for j in jobs] == ["done", "failed", "failed"]
    assert "no checkpoint" in jobs[1].reason
    assert any("metrics.json" in n for n in jobs[2].notes) and any("last.pt" in n for n in jobs[2].notes)
    assert jobs[2].parameters is None and jobs[2].valid is None and jobs[2].sample_image is None
    rows = _csv_rows(root)
    assert [r["status"] for r in rows] == ["done", "failed", "failed"] and rows[2]["valid_nll"] == ""
    assert all(paths[name].read_bytes().startswith(PNG_MAGIC) for name in ("curves.png", "samples.png"))
    assert "metrics.json" in (root / "report.md").read_text()
