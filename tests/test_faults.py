"""Fault injection (issue 9), through the real apps where it matters: divergence, concurrent
writers, resumes that change the config, NaN and huge audio, plugins that raise or exit at
import and plugins that collide, temporary files of killed writers, a full disk (a tmpfs, as
root), TensorBoard after a resume, progress of melforge-sample / melforge-invert and the
latter's output paths, kill -9 at random points (inside checkpoint writes too) with an exact
resume, truncated and foreign checkpoints.

``MELFORGE_FAULT_SEED=N`` replays the random kill points of a failed run (the seed is in the
assertion message)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.divergence import DivergenceDetector
from melforge.core.run_dir import ResumeMismatch, RunDirectoryBusy, locked_run_dir
from melforge.core.learners import train
from melforge.core.training import TrainingDiverged


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


def test_resume_applies_a_changed_learning_rate_and_logs_it(tmp_path, compose_train, tiny_train, caplog):
    train(compose_train(*tiny_train, "train.max_steps=2"), tmp_path)
    train(compose_train(*tiny_train, "train.max_steps=4", "optimizer.lr=0.0005"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert state["step"] == 4
    assert all(group["lr"] == 0.0005 for group in state["optimizers"]["model"]["param_groups"])
    assert "optimizer.lr: 0.0001 → 0.0005" in caplog.text  # the melforge.train log (train.log under the app)
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

    reporter = Reporter(tmp_path, 0, 10, {}, monitor="nll")
    try:
        with pytest.raises(NonFiniteMetric, match="valid_nll at step 3 is not finite"):
            reporter.validation(3, {"nll": float("nan"), "nll_tier1": 0.5})
        assert "valid_nll" not in reporter.metrics
    finally:
        reporter.close()


# --- plugins that raise or exit at import, plugins that collide (item 6) ---------------------

COLLIDING_HEAD = """
from melforge.core.hookspecs import hookimpl
from melforge.plugins.gmm.head import GMMHead

class Twin(GMMHead):
    '''A head two packages both call "twin".'''

@hookimpl
def melforge_register_head(registry):
    registry.register("twin", Twin)
"""


def _fake_distribution(root, dist: str, module: str, source: str) -> None:
    """An installed distribution ``dist`` whose ``melforge`` entry point ``main`` is ``module``
    (found on ``sys.path`` through ``root``, as pip would install it)."""
    import textwrap

    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[melforge]\nmain = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.mark.parametrize("source, error", [
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("raise SystemExit('bye')\n", "SystemExit: bye"),
    ("raise GeneratorExit('odd')\n", "GeneratorExit: odd"),
    ("raise MemoryError('no room')\n", "MemoryError: no room"),
    ("1 / 0\n", "ZeroDivisionError"),
])
def test_a_plugin_that_raises_or_exits_at_import_is_skipped_by_name(tmp_path, monkeypatch, source, error):
    from melforge.core.plugins import PluginLoadError, load_registries

    _fake_distribution(tmp_path, "melforge-exits", "mf_exits", source)
    _fake_distribution(tmp_path, "melforge-twin-a", "mf_twin_a", COLLIDING_HEAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match=f"melforge-exits:main failed to load and was skipped: {error}"):
        regs = load_registries()
    assert [f.plugin for f in regs.failures] == ["melforge-exits:main"]
    assert regs.head.get("twin").plugin == "melforge-twin-a:main" and "melnet" in regs.backbone
    with pytest.raises(PluginLoadError, match="melforge-exits:main"):
        load_registries(strict=True)


def test_a_plugin_exiting_in_its_hook_is_skipped_and_keyboard_interrupt_still_stops(tmp_path, monkeypatch):
    import types

    from melforge.core.hookspecs import hookimpl
    from melforge.core.plugins import load_registries

    def exits(registry):
        registry.register("half_registered", lambda **kwargs: None)  # never added: the hook does not finish
        sys.exit(4)

    exiting = types.SimpleNamespace(melforge_register_backbone=hookimpl(exits))
    with pytest.warns(RuntimeWarning, match="exiting_pkg failed to load and was skipped: SystemExit: 4"):
        regs = load_registries(entry_points=[], extra_plugins=[("exiting_pkg", exiting)])
    assert "half_registered" not in regs.backbone and "melnet" in regs.backbone

    (tmp_path / "mf_interrupt.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib.metadata import EntryPoint

    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C is not a plugin failure
        load_registries(entry_points=[EntryPoint("main", "mf_interrupt", "melforge")])


def test_colliding_plugins_in_process_fail_only_the_command_that_uses_the_name(tmp_path, compose_train, tiny_train, monkeypatch):
    import types

    import melforge.core.plugins as plugins
    from melforge.core.app import check_train_config
    from melforge.core.hookspecs import hookimpl
    from melforge.core.registry import DuplicateEntryError
    from melforge.plugins.gmm.head import GMMHead

    def plugin(cls):
        return types.SimpleNamespace(melforge_register_head=hookimpl(lambda registry: registry.register("twin", cls)))

    A, B = type("A", (GMMHead,), {}), type("B", (GMMHead,), {})
    with pytest.warns(RuntimeWarning, match="head 'twin' is registered by more than one plugin: by pkg_a and by pkg_b"):
        regs = plugins.load_registries(entry_points=[], extra_plugins=[("pkg_a", plugin(A)), ("pkg_b", plugin(B))])
    assert regs.head.entries() and [e.plugin for e in regs.head.entries() if e.name == "twin"] == ["pkg_a"]
    monkeypatch.setattr(plugins, "_CACHED", regs)  # what every command of this process uses
    with pytest.raises(DuplicateEntryError, match="head 'twin' is registered by more than one plugin: by pkg_a and by pkg_b"):
        check_train_config(compose_train(*tiny_train, "head.name=twin"))
    cfg = compose_train(*tiny_train, "train.max_steps=2")
    check_train_config(cfg)  # a command that does not use the name runs
    assert train(cfg, tmp_path)["steps"] == 2


def test_melforge_plugins_lists_a_collision_and_skips_an_exiting_plugin_and_train_names_both(tmp_path):
    """The real commands, with three installed plugins: one calls sys.exit at import, two
    register the same head name."""
    _fake_distribution(tmp_path, "melforge-exits", "mf_exits", "import sys\nsys.exit(3)\n")
    _fake_distribution(tmp_path, "melforge-twin-a", "mf_twin_a", COLLIDING_HEAD)
    _fake_distribution(tmp_path, "melforge-twin-b", "mf_twin_b", COLLIDING_HEAD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    listing = subprocess.run([sys.executable, "-m", "melforge.core.cli.plugins"], capture_output=True, text=True,
                             env=env, timeout=300)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    assert "melforge-exits:main: SystemExit: 3" in out  # reported under "skipped plugins"
    twin = [l for l in out.splitlines() if l.split()[:1] == ["twin"]]
    assert len(twin) == 1 and "melforge-twin-a:main" in twin[0]
    assert "COLLISION: also registered by melforge-twin-b:main" in out
    assert "head 'twin': melforge-twin-a:main, melforge-twin-b:main" in out
    assert "melnet" in out and "griffin_lim" in out  # everything else is listed
    assert "head 'twin' is registered by more than one plugin" in listing.stderr  # and warned

    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.train", "head.name=twin", f"hydra.run.dir={run}"],
                          capture_output=True, text=True, env=dict(env, PYTHONWARNINGS="ignore"), timeout=300)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "head 'twin' is registered by more than one plugin: by melforge-twin-a:main and by melforge-twin-b:main" in lines[0]
    assert not run.exists()


# --- leftovers of killed writers, a full disk, TensorBoard after a resume (item 8) -------------


def test_temporary_files_of_dead_writers_are_removed_at_start_up(tmp_path, compose_train, tiny_train, caplog):
    stale = [tmp_path / "checkpoints/.last.pt.k3j_x9a2.tmp", tmp_path / ".metrics.json.0abc1def.tmp",
             tmp_path / "samples/.sample_000.wav.zz99yy88.tmp"]
    kept = [tmp_path / "checkpoints/notes.tmp", tmp_path / ".hidden.tmp", tmp_path / "tensorboard/.x.k3j_x9a2.tmp"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a checkpoint")
        os.utime(path, (1e9, 1e9))
    train(compose_train(*tiny_train, "train.max_steps=2"), tmp_path)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)  # not named like atomic_path's files, or not in a folder melforge writes
    assert "removed 3 temporary file(s) left by interrupted writes" in caplog.text


def _fill(path) -> None:
    """Write zeros into ``path`` until its filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * (1 << 16))
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="fills a small tmpfs, and mounting one needs root")
def test_a_full_disk_stops_training_naming_the_checkpoint_and_keeps_the_previous_one(tmp_path, compose_train, tiny_train):
    run = tmp_path / "run"
    ckpt = run / "checkpoints"
    ckpt.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "melforge-test-full", str(ckpt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (running as root, but: {mounted.stderr.strip()})")
    try:
        train(compose_train(*tiny_train, "train.max_steps=2"), run)
        _fill(ckpt / "filler")
        os.truncate(ckpt / "filler", os.path.getsize(ckpt / "filler") - 8192)  # room for a part of a checkpoint
        proc = subprocess.run(
            [sys.executable, "-m", "melforge.core.cli.train", *tiny_train, "train.max_steps=4", f"hydra.run.dir={run}"],
            capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
        error = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and error.startswith("melforge-train: error: "), proc.stderr
        assert "unexpected pos" not in error.split("the disk is full")[0]
        assert f"could not write checkpoint {ckpt / 'step_00000004.pt'}: the disk is full" in error, error
        assert f"the previous checkpoint {ckpt / 'last.pt'} is intact (it holds step 2)" in error, error
        assert sorted(p.name for p in ckpt.iterdir()) == ["filler", "last.pt", "step_00000002.pt"]  # no partial file
        assert load_checkpoint(ckpt / "last.pt")["step"] == 2
        (ckpt / "filler").unlink()  # room again: the run resumes from the kept checkpoint
        assert train(compose_train(*tiny_train, "train.max_steps=4"), run)["steps"] == 4
    finally:
        subprocess.run(["umount", "-l", str(ckpt)], check=False)


def test_tensorboard_keeps_the_points_of_the_resumed_step(tmp_path, compose_train, tiny_train):
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ckpt = tmp_path / "checkpoints"
    train(compose_train(*tiny_train, "train.max_steps=4"), tmp_path)  # validation at 0, 2, 4; checkpoints at 2, 4
    # killed after writing step 4's points, before its checkpoint: last.pt holds step 2
    shutil.copy(ckpt / "step_00000002.pt", ckpt / "last.pt")
    train(compose_train(*tiny_train, "train.max_steps=4"), tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("valid/nll")] == [0, 2, 4]  # step 2's point kept, step 4's once
    assert [e.step for e in events.Scalars("train/nll")] == [1, 2, 3, 4]


def test_a_checkpoint_write_that_fails_otherwise_says_so_and_names_the_file(tmp_path):
    from melforge.core.checkpoint import CheckpointWriteError, save_checkpoint

    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(CheckpointWriteError, match="could not write checkpoint .*a_file/ckpt/step_00000003.pt: "
                       "the write failed: .*no checkpoint had been written before"):
        save_checkpoint(tmp_path / "a_file" / "ckpt", 3, {"step": 3, "model": {"w": torch.zeros(2)}})


# --- progress of the long-running commands (item 8) -------------------------------------------


def test_sampling_shows_a_progress_bar_per_tier_counting_its_frames_and_draws_the_same(compose_train, tiny_train, capsys):
    from melforge.core.experiment import build_model
    from melforge.core.plugins import registries
    from melforge.core.sampler import select_sampler
    from melforge.core.samples import frame_progress

    for tiers in (None, "[1,1,1]"):
        cfg = compose_train(*tiny_train, "backbone.hidden_size=8", *([f"tiers.layers={tiers}"] if tiers else []))
        model = build_model(cfg, bins=16).eval()
        samplers = [select_sampler(registries().sampler, "cached", t.backbone, t.head) for t in model.tiers]
        prime = torch.randn(1, 4, 16)
        draws = []
        for progress in (False, True):
            context = frame_progress(model, 8, 16, 4, "sample 1/1") if progress else contextlib.nullcontext()
            with context as callback:
                draws.append(model.sample(samplers, batch=1, frames=8, bins=16, generator=torch.Generator().manual_seed(0),
                                          prime=prime, progress=callback).x)
        assert torch.equal(*draws)  # the bars only count
        err = capsys.readouterr().err
        for g, (frames_g, _) in enumerate(model.schedule.shapes(8, 16), start=1):
            title = "sample 1/1" + (f", tier {g}/3" if tiers else "")
            todo = frames_g // 2  # half the frames are primed
            # stderr is not a terminal here: whole lines (issue 20 item 8), not tqdm's carriage returns
            assert f"{title}: {todo}/{todo} frame (100%)" in err and "\r" not in err, err


@contextlib.contextmanager
def _read_only_folder(path):
    """A folder nothing can be written into, even by root (a read-only tmpfs when root)."""
    path.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "melforge-test-ro", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"root cannot be kept from writing without a read-only mount: {mounted.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
    else:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


def test_melforge_invert_refuses_bad_output_paths_before_any_work(tmp_path, speech_audio):
    import soundfile as sf

    from melforge.core.inversion import check_output_path

    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    for output, error in (
        (tmp_path / "folder", "is a folder"),
        (tmp_path / "a_file/out.wav", "a_file is a file, not a folder"),
        (tmp_path / "a_file/deeper/out.wav", "a_file is a file, not a folder"),
    ):
        with pytest.raises(ValueError, match=f"output='{output}': .*{error}"):
            check_output_path(output)
    with _read_only_folder(tmp_path / "locked") as locked:
        with pytest.raises(ValueError, match="cannot write into the folder .*locked"):
            check_output_path(locked / "out.wav")
        with pytest.raises(ValueError, match="cannot create .*locked/new: the folder .*locked is not writable"):
            check_output_path(locked / "new/out.wav")
    check_output_path(tmp_path / "new/folders/out.wav")  # folders that do not exist yet are made
    assert not (tmp_path / "new").exists()

    sf.write(tmp_path / "in.wav", np.tile(speech_audio[0], 3), 16000)  # long enough that work would show
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.invert", "input=in.wav", "output=folder"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr  # no start line: nothing was analysed
    assert lines[0].startswith("melforge-invert: error: output='folder': is a folder"), lines[0]


def test_melforge_invert_shows_the_duration_and_a_bar_over_iterations_and_inverts_the_same(tmp_path, speech_audio, capsys):
    import soundfile as sf
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.cli.invert import _task
    from melforge.core.inversion import invert_file
    from melforge.core.plugins import registries

    audio, sr = speech_audio
    sf.write(tmp_path / "in.wav", audio, sr)
    overrides = [f"input={tmp_path / 'in.wav'}", f"output={tmp_path / 'bars.wav'}", "inverter=gradient",
                 "inverter.n_iter=3", "inverter.init_iters=2"]
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="invert", overrides=overrides), resolve=True)
    _task(cfg, str(tmp_path))
    captured = capsys.readouterr()
    frames = 1 + len(audio) // 256
    assert f"melforge-invert: {tmp_path / 'in.wav'} → {tmp_path / 'bars.wav'}: {len(audio) / sr:.2f} s of audio, {frames} frames" in captured.err
    # stderr is not a terminal here: whole lines (issue 20 item 8)
    assert "griffin-lim: 2/2 iter (100%)" in captured.err  # the start's fast-GL iterations
    assert re.search(r"L-BFGS: \d/3 iter", captured.err) and "\r" not in captured.err
    assert "s inverted in" in captured.out
    regs = registries()  # the library call shows no bars and gives the same waveform
    invert_file(tmp_path / "in.wav", tmp_path / "plain.wav", regs.representation.build(cfg["representation"]),
                regs.inverter.build(cfg["inverter"]))
    assert "iter" not in capsys.readouterr().err
    assert np.array_equal(sf.read(tmp_path / "bars.wav")[0], sf.read(tmp_path / "plain.wav")[0])


# --- kill -9 at random points, inside checkpoint writes too; foreign checkpoints -------------

#: Run in a child: ``python -c KILL_INSIDE_SAVE <train overrides>`` trains like melforge-train, but
#: its ``KILL_AT_SAVE``-th ``torch.save`` writes half of its bytes and then SIGKILLs the process.
KILL_INSIDE_SAVE = """
import io, os, runpy, signal, sys
import torch
real_save, calls, kill_at = torch.save, [0], int(os.environ["KILL_AT_SAVE"])
def save(obj, f, *args, **kwargs):
    calls[0] += 1
    if calls[0] == kill_at:
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        with open(f, "wb") as fh:
            fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
sys.argv = ["melforge-train", *sys.argv[1:]]
runpy.run_module("melforge.core.cli.train", run_name="__main__")
"""


def _every_checkpoint_loads(ckpt, seed) -> list[int]:
    steps = []
    for path in sorted(ckpt.glob("*.pt")):  # a write cut short is a .tmp file, never a .pt
        state = load_checkpoint(path)
        assert state["step"] >= 1 and set(state["model"]), (seed, path)
        steps.append(int(state["step"]))
    return steps


def test_kill_9_at_random_points_leaves_loadable_checkpoints_and_resumes_to_the_same_weights(tmp_path, compose_train, tiny_train):
    import random
    import time

    seed = int(os.environ.get("MELFORGE_FAULT_SEED", time.time_ns() % 1_000_000))  # printed on failure
    rng = random.Random(seed)
    steps = 30
    overrides = (*tiny_train, f"train.max_steps={steps}", "train.checkpoint_every=1", "train.valid_every=1000")
    reference = train(compose_train(*overrides), tmp_path / "reference")
    assert reference["steps"] == steps
    run, env = tmp_path / "run", dict(os.environ, PYTHONWARNINGS="ignore")
    ckpt = run / "checkpoints"
    command = [*overrides, f"hydra.run.dir={run}"]

    # 1. killed inside a checkpoint write (the step file or last.pt), at a random one of them
    kill_at = rng.randint(3, 2 * steps - 2)
    proc = subprocess.run([sys.executable, "-c", KILL_INSIDE_SAVE, *command], capture_output=True, text=True,
                          timeout=300, env=dict(env, KILL_AT_SAVE=str(kill_at)))
    assert proc.returncode == -9, (seed, proc.stderr[-2000:])
    partial = list(ckpt.glob(".*.tmp"))
    assert len(partial) == 1, (seed, sorted(p.name for p in ckpt.iterdir()))  # the write it was killed in
    saved = _every_checkpoint_loads(ckpt, seed)
    assert load_checkpoint(ckpt / "last.pt")["step"] == (kill_at - 1) // 2, seed

    # 2. killed at a random moment once it trains again (between steps, in a write, anywhere)
    with open(tmp_path / "stderr", "w+") as err:
        child = subprocess.Popen([sys.executable, "-m", "melforge.core.cli.train", *command], stderr=err,
                                 stdout=subprocess.DEVNULL, env=env)
        before, deadline = (ckpt / "last.pt").stat().st_mtime_ns, time.monotonic() + 240
        while (ckpt / "last.pt").stat().st_mtime_ns == before and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        child.kill()  # SIGKILL
        child.wait(timeout=60)
        err.seek(0)
        log = err.read()
    assert "removed 1 temporary file(s) left by interrupted writes" in log, (seed, log[-2000:])
    assert not partial[0].exists()
    assert max(_every_checkpoint_loads(ckpt, seed)) >= max(saved), seed

    # 3. resumed to the end: the weights of the uninterrupted run, exactly
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.train", *command], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, (seed, proc.stderr[-2000:])
    final, expected = load_checkpoint(ckpt / "last.pt"), load_checkpoint(tmp_path / "reference/checkpoints/last.pt")
    assert final["step"] == steps
    for name, value in expected["model"].items():
        assert torch.equal(final["model"][name], value), (seed, name)
    _every_checkpoint_loads(ckpt, seed)


def test_truncated_and_foreign_checkpoints_are_refused_by_name(tmp_path, compose_train, tiny_train):
    from melforge.core.checkpoint import CheckpointError
    from melforge.core.samples import sample_checkpoint

    run = tmp_path / "run"
    train(compose_train(*tiny_train, "train.max_steps=2"), run)
    last = run / "checkpoints/last.pt"
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other_dict.pt")
    refused = {
        tmp_path / "random.pt": "was refused",
        tmp_path / "tensor.pt": "holds a Tensor, not a dict",
        tmp_path / "other_dict.pt": "lacks key(s) step, model, config",
    }
    for path, why in refused.items():
        with pytest.raises(CheckpointError, match=f"checkpoint {re.escape(str(path))}.*{re.escape(why)}"):
            load_checkpoint(path)
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a truncated last.pt
    with pytest.raises(CheckpointError, match=f"checkpoint {last} was refused"):
        train(compose_train(*tiny_train, "train.max_steps=4"), run)  # resume: refused, nothing trained
    with pytest.raises(CheckpointError, match=f"checkpoint {last} was refused"):
        sample_checkpoint(last, tmp_path / "samples", {"count": 1, "frames": 12, "temperature": 1.0, "seed": 0})
    assert load_checkpoint(run / "checkpoints/step_00000002.pt")["step"] == 2  # the step file still loads
