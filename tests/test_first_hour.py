"""The small frictions of a newcomer's first hour (issue 20, item 7), each as the user met it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf


def _app(name: str, *args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"melforge.core.cli.{name}", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=dict(os.environ, PYTHONWARNINGS="ignore", **(env or {})))


def test_invert_takes_threads_and_says_it_resamples_in_its_first_line(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    proc = _app("invert", f"input={tmp_path / 'in.wav'}", f"output={tmp_path / 'out.wav'}", "threads=1")
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("melforge-invert: ") and "resampled from 22050 Hz to the representation's 16000 Hz" in first
    assert sf.info(tmp_path / "out.wav").samplerate == 16000
    bad = _app("invert", f"input={tmp_path / 'in.wav'}", f"output={tmp_path / 'out.wav'}", "threads=0")
    assert bad.returncode == 2 and "threads=0" in bad.stderr


def test_the_compile_timer_counts_numba_compilation(tmp_path, monkeypatch):
    from melforge.core.cli.invert import compile_timer

    (tmp_path / "jitted_mod.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit
        def inner(x):
            return x + 1.0

        @njit
        def outer(x):
            return inner(x) * 2.0
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import jitted_mod

    with compile_timer() as first:
        assert jitted_mod.outer(np.ones(3)).tolist() == [4.0, 4.0, 4.0]
    with compile_timer() as again:
        jitted_mod.outer(np.ones(3))
    assert first.seconds > 0.01 and again.seconds == 0.0


@pytest.mark.parametrize("content", [None, "hello, I am a text file\n"])
def test_sample_with_a_missing_or_text_checkpoint_fails_first_and_leaves_no_folder(tmp_path, content):
    ckpt = tmp_path / "last.pt"
    if content is not None:
        ckpt.write_text(content)
    proc = _app("sample", f"checkpoint={ckpt}", f"hydra.run.dir={tmp_path / 'out'}")
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("melforge-sample: error: checkpoint="), proc.stderr
    assert ("does not exist" if content is None else "not a PyTorch checkpoint file") in lines[0]
    assert "weights_only" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_holding_objects_is_refused_without_pytorchs_unpickling_advice(tmp_path):
    import torch

    from melforge.core.checkpoint import CheckpointError, load_checkpoint

    torch.save({"step": 1, "model": {}, "config": {}, "normalizer": {}, "extra": _Payload()}, tmp_path / "x.pt")
    torch.save("not a dict", tmp_path / "s.pt")
    (tmp_path / "t.pt").write_text("plain text")
    for name, words in [("x.pt", "objects other than tensors and plain data"), ("t.pt", "not a PyTorch checkpoint file")]:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        text = str(err.value)
        assert words in text and "weights_only" not in text and "trust" not in text and "\x1b" not in text, text
    with pytest.raises(CheckpointError, match="not a dict"):
        load_checkpoint(tmp_path / "s.pt")


class _Payload:
    """A pickled object that is not plain data."""


def test_a_failed_sampling_run_leaves_no_empty_run_folder(tmp_path):
    from melforge.core.cli.sample import remove_if_unused

    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / "app.log").write_text("")
    remove_if_unused(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "kept" / "samples").mkdir(parents=True)  # something was written: kept
    remove_if_unused(tmp_path / "kept")
    assert (tmp_path / "kept" / "samples").is_dir()


def test_the_end_of_training_line_names_the_sample_wav_and_the_inverter():
    from melforge.core.cli.train import done_line

    metrics = {"monitor": "nll", "monitor_label": "NLL", "monitor_units": "nats/element", "valid_nll_step0": 1.5,
               "valid_nll": -0.2, "valid_bits": -0.29, "train_nll": -0.1, "inverter": "griffin_lim",
               "samples": [{"wav": "runs/x/samples/sample_000.wav"}, {"wav": "runs/x/samples/sample_001.wav"}]}
    cfg = {"representation": {"name": "log_mel", "hop_length": 256}, "inverter": {"name": "griffin_lim"}}
    line = done_line(cfg, "runs/x", metrics)
    assert "valid NLL 1.5000 → -0.2000 nats/element (-0.2900 bits); train NLL -0.1000" in line
    assert "sample runs/x/samples/sample_000.wav (and 1 more), inverted with griffin_lim" in line
    # a waveform representation needs no inverter: the run reports none
    waveform = done_line({"representation": {"name": "mu_law"}, "inverter": {"name": "griffin_lim"}}, "runs/x",
                         {**metrics, "inverter": None})
    assert "decoded by mu_law" in waveform and "griffin_lim" not in waveform
    assert "sample" not in done_line(cfg, "runs/x", {**metrics, "samples": []}).split(";")[-1]
