"""Reliability leftovers of the fault probes (issue 20, item 8): temporary files cleaned after
every checkpoint write, folders fsynced after a rename, a full disk named for every file melforge
writes, unreadable files called "permission denied", progress lines off a terminal."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from melforge.core import atomic
from melforge.core.atomic import DiskFullError, atomic_path, atomic_write


def test_a_successful_checkpoint_write_removes_the_temporary_files_of_killed_writers(tmp_path):
    import torch

    from melforge.core.checkpoint import save_checkpoint

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    stale = [ckpt / ".last.pt.k3j_x9a2.tmp", ckpt / ".step_00000002.pt.0abc1def.tmp"]
    for path in stale:
        path.write_bytes(b"")  # what kill -9 mid-write leaves: a 0-byte temporary file
        os.utime(path, (time.time() - 5, time.time() - 5))
    (ckpt / "notes.tmp").write_text("not melforge's")
    save_checkpoint(ckpt, 4, {"step": 4, "model": {"w": torch.zeros(2)}, "config": {}, "normalizer": {}})
    assert sorted(p.name for p in ckpt.iterdir()) == ["last.pt", "notes.tmp", "step_00000004.pt"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced: list[tuple[bool, bool]] = []  # (a folder?, the target renamed in already?)
    real = os.fsync

    def spy(fd):
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), (tmp_path / "out.json").exists()))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic_write(tmp_path / "out.json", lambda tmp: tmp.write_text("{}"))
    assert synced == [(False, False), (True, True)]  # the file before the rename, its folder after


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("write", ["json", "wav", "csv"])
def test_a_full_disk_is_named_for_every_file_melforge_writes(tmp_path, monkeypatch, write):
    from melforge.core.audio_io import write_wav
    from melforge.core.report import write_csv
    from melforge.core.reporting import write_metrics

    target = tmp_path / {"json": "metrics.json", "wav": "sample.wav", "csv": "report.csv"}[write]
    monkeypatch.setattr(atomic.os, "fsync", _enospc)  # the disk fills up as the data reaches it
    with pytest.raises(DiskFullError) as err:
        {"json": lambda: write_metrics(target, {"a": 1}),
         "wav": lambda: write_wav(target, np.zeros(160, np.float32), 16000),
         "csv": lambda: write_csv(target, ["a"], [[1.0]])}[write]()
    assert str(err.value).startswith(f"could not write {target}: the disk is full (")
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary file


@pytest.mark.skipif(os.geteuid() != 0, reason="fills a small tmpfs, and mounting one needs root")
def test_a_full_tmpfs_names_the_metrics_file(tmp_path):
    from melforge.core.reporting import write_metrics

    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "melforge-test-full", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (running as root, but: {mounted.stderr.strip()})")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        with pytest.raises(DiskFullError, match=f"could not write {folder / 'metrics.json'}: the disk is full"):
            write_metrics(folder / "metrics.json", {"values": list(range(5000))})
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_an_unreadable_file_is_skipped_as_permission_denied(tmp_path):
    """As root, the read override opens anything: the check then runs in a forked child that
    has become user ``nobody``."""
    import warnings

    from melforge.datasets.audio_folder import AudioFolder

    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ("ok.wav", "locked.wav"):
        sf.write(folder / name, (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000)
    (folder / "locked.wav").chmod(0)
    for parent in [folder, *folder.parents]:  # let nobody reach the folder
        if parent.stat().st_uid == os.geteuid():
            parent.chmod(parent.stat().st_mode | 0o005)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, list the clips, report, exit
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ids = [c.id for c in AudioFolder(folder).clips(16000)]
            os.write(write, json.dumps({"ids": ids, "warnings": [str(w.message) for w in caught]}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        report = json.loads(fh.read() or "{}")
    os.waitpid(pid, 0)
    assert report["ids"] == ["ok.wav"], report
    messages = " | ".join(report["warnings"])
    assert f"skipping {folder / 'locked.wav'}: permission denied" in messages and "System error" not in messages


def test_a_rerun_from_the_feature_cache_shows_a_one_line_skip_summary(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    for k in range(6):
        sf.write(folder / f"clip{k}.wav", (0.2 * np.sin(np.arange(24000) * (k + 1) / 7)).astype(np.float32), 16000)
    sf.write(folder / "silent.wav", np.zeros(16000, np.float32), 16000)
    env = dict(os.environ, PYTHONWARNINGS="ignore", MELFORGE_CACHE=str(tmp_path / "cache"))
    args = [sys.executable, "-m", "melforge.core.cli.train", "dataset=audio_folder", f"dataset.root={folder}",
            "backbone.hidden_size=8", "backbone.layers=1", "head.components=2", "data.crop_frames=8",
            "data.valid_fraction=0.3", "train.batch_size=2", "train.max_steps=1", "train.valid_every=1",
            "sample.count=0", "threads=1"]
    for run in ("first", "again"):
        proc = subprocess.run([*args, f"hydra.run.dir={tmp_path / run}"], capture_output=True, text=True, timeout=600,
                              env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "again/skipped.json").read_text())["skipped"]  # the silent clip
    import re

    assert re.search(rf"\b1 files? skipped, see {re.escape(str(tmp_path / 'again/skipped.json'))}", proc.stderr)
    assert "skipping" not in proc.stderr  # the re-run read the cache: no per-file warnings, the summary only


def test_progress_off_a_terminal_is_a_line_at_least_every_interval_even_without_updates():
    from melforge.core.progress import LineProgress, bar

    out = io.StringIO()
    assert isinstance(bar(20, "sampling", "frame", stream=out), LineProgress)  # not a terminal
    shown = LineProgress(20, "sampling", "frame", seconds=0.05, stream=out)
    shown.update(3)
    time.sleep(0.4)  # no update for 8 intervals: the timer still writes
    shown.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("sampling: 0/20 frame (0%)") and lines[-1].startswith("sampling: 3/20 frame (15%)")
    assert lines[-1].endswith(", done") and len(lines) >= 5
    assert all("\r" not in line for line in lines)


def test_invert_to_a_file_prints_whole_progress_lines(tmp_path):
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(np.arange(16000) / 8)).astype(np.float32), 16000)
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.invert", f"input={tmp_path / 'in.wav'}",
                               f"output={tmp_path / 'out.wav'}"], stdout=subprocess.PIPE, stderr=err, text=True,
                              timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0
    text = (tmp_path / "err.txt").read_text()
    assert "\r" not in text and "griffin-lim: 0/32 iter (0%)" in text and "griffin-lim: 32/32 iter (100%)" in text
