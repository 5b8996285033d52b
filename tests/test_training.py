"""Training runner on the real speech corpus: exact resume, divergence handling, the Hydra
apps end to end, config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from melforge.core.checkpoint import load_checkpoint
from melforge.core.audio_io import read_audio
from melforge.core.samples import sample_checkpoint as sample_from_checkpoint
from melforge.core.experiment import build_model
from melforge.core.features import FeatureCorpus
from melforge.core.normalization import Normalizer
from melforge.core.plugins import registries
from melforge.core.multiscale import MultiscaleModel
from melforge.core.learners import train
from melforge.core.training import TrainingDiverged


def _params(path):
    return load_checkpoint(path)["model"]


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, compose_train, tiny_train):
    straight = compose_train(*tiny_train, "train.max_steps=4")
    train(straight, tmp_path / "straight")
    first_half = compose_train(*tiny_train, "train.max_steps=2")
    train(first_half, tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["step"] == 2
    train(straight, tmp_path / "resumed")  # same run dir: resumes from step 2
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["metrics"]["valid_nll_step0"] == b["metrics"]["valid_nll_step0"]
    # and training really moved the parameters
    fresh = load_checkpoint(tmp_path / "resumed/checkpoints/step_00000002.pt")["model"]
    assert any(not torch.equal(fresh[k], v) for k, v in a["model"].items())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, compose_train, tiny_train, monkeypatch):
    cfg = compose_train(*tiny_train, "train.max_steps=6")
    real_sums = MultiscaleModel.tier_nll_sums  # what the training step calls (validation too, with tiers=None)
    calls = {"n": 0}

    def flaky_sums(self, x, cond=None, tiers=None, lengths=None):
        sums = real_sums(self, x, cond, tiers, lengths)
        if tiers is None:  # a validation pass
            return sums
        calls["n"] += 1
        return {g: (total * float("nan"), n) for g, (total, n) in sums.items()} if calls["n"] == 4 else sums

    monkeypatch.setattr(MultiscaleModel, "tier_nll_sums", flaky_sums)
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, tmp_path)
    message = str(err.value)
    assert "non-finite loss" in message and "at step 4" in message and "(step 2), is intact" in message
    last = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert last["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert not (tmp_path / "metrics.json").exists()


def _run(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_train_and_sample_commands_write_a_complete_run(tmp_path, tiny_train):
    run = tmp_path / "run"
    proc = _run(
        "melforge.core.cli.train",
        *tiny_train,
        "train.max_steps=30",
        "train.valid_every=10",
        "train.checkpoint_every=10",
        "sample.count=1",
        "sample.frames=12",
        "inverter.n_iter=4",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("valid_nll_step0", "valid_nll", "train_nll", "valid_bits", "train_bits"):
        assert np.isfinite(metrics[key]), key
    assert metrics["steps"] == 30
    assert metrics["valid_nll"] < metrics["valid_nll_step0"] - 0.1
    assert (run / "config.yaml").exists() and (run / "checkpoints/last.pt").exists()
    assert any((run / "tensorboard").iterdir())
    png, wav = run / "samples/sample_000.png", run / "samples/sample_000.wav"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    audio, sr = sf.read(wav)
    assert sr == 16000 and len(audio) == 11 * 256 and np.abs(audio).max() > 1e-3
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"audio": 0, "scalars": 0}).Reload()
    lrs = [e.value for e in events.Scalars("train/lr")]
    assert lrs and all(abs(v - 1e-4) < 1e-9 for v in lrs)  # RMSProp lr, seed 000 Appendix A (float32 in the file)
    assert "samples/0" in events.Tags()["audio"] and "samples/0" in events.Tags()["images"]
    hparams = EventAccumulator(str(run / "tensorboard/hparams")).Reload()
    assert "hparam/valid_nll" in hparams.Tags()["scalars"]
    log = (run / "train.log").read_text()  # Python logging through Hydra's job logging
    for line in ("step 10: train NLL", "step 30: valid NLL", "step 30: wrote checkpoint", "done in"):
        assert line in log, line

    out = tmp_path / "sampled"
    proc = _run(
        "melforge.core.cli.sample",
        f"checkpoint={run / 'checkpoints/last.pt'}",
        "sample.frames=6",
        "sample.count=2",
        "inverter.n_iter=2",
        "threads=1",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "samples").glob("*.wav")) == ["sample_000.wav", "sample_001.wav"]


def test_unknown_config_key_is_an_error_naming_the_key(tmp_path):
    proc = _run("melforge.core.cli.train", "train.max_stepz=3", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "max_stepz" in proc.stderr
    proc = _run("melforge.core.cli.train", "+backbone.hiden_size=3", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "'hiden_size'" in proc.stderr and "melnet" in proc.stderr
    proc = _run("melforge.core.cli.train", "dataset=audio_folder", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "Missing mandatory value" in proc.stderr and "dataset.root" in proc.stderr


def test_missing_checkpoint_is_an_error_naming_the_file(tmp_path):
    proc = _run("melforge.core.cli.sample", f"checkpoint={tmp_path / 'nope.pt'}", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode != 0 and "nope.pt does not exist" in proc.stderr


TINY_TIERS = ("tiers.layers=[1,1,1]", "backbone.hidden_size=12", "data.crop_frames=12", "sample.frames=8")


def test_multi_tier_twin_trains_every_tier_on_real_speech_and_samples_coarse_to_fine(tmp_path, compose_train, tiny_train):
    cfg = compose_train(
        "experiment=speech_tiers_tiny", *tiny_train, *TINY_TIERS, "train.max_steps=2",
        "sample.count=1", "sample.prime_frames=2",
    )
    metrics = train(cfg, tmp_path)
    assert metrics["tiers"] == 3 and metrics["tiers_trained"] == [1, 2, 3]
    assert metrics["tier_shapes"] == [[6, 32], [6, 32], [6, 64]]
    for g in (1, 2, 3):
        assert np.isfinite(metrics[f"valid_nll_tier{g}"]) and metrics[f"valid_nll_tier{g}"] != metrics[f"valid_nll_tier{g}_step0"]
    # valid_nll is the NLL of the whole spectrogram: the element-weighted sum over tiers (eq. 10)
    expected = (metrics["valid_nll_tier1"] + metrics["valid_nll_tier2"] + 2 * metrics["valid_nll_tier3"]) / 4
    assert metrics["valid_nll"] == pytest.approx(expected)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["valid_nll_tier3"] == metrics["valid_nll_tier3"]
    first = load_checkpoint(tmp_path / "checkpoints/step_00000002.pt")["model"]
    sample = metrics["samples"][0]
    assert sample["primed_frames"] == 2 and len(sample["tier_nll_per_element"]) == 3
    assert (tmp_path / "samples/sample_000_tiers.png").stat().st_size > 0
    audio, sr = sf.read(sample["wav"])
    assert sr == 16000 and np.isfinite(audio).all() and np.abs(audio).max() > 0
    feats = np.load(sample["npy"])
    assert feats.shape == (8, 64)
    assert {k.split(".")[0] for k in first} == {"tiers"}
    # Primed from the first validation clip: its first frames come back (up to float32
    # normalise/denormalise rounding), in every tier.
    regs = registries()
    representation = regs.representation.build(cfg["representation"])
    corpus = FeatureCorpus.build(
        regs.dataset.build(cfg["dataset"]), representation,
        valid_fraction=cfg["data"]["valid_fraction"], trim_db=cfg["data"]["trim_db"],
    )
    real = next(f for f in corpus.valid if len(f) >= 2)[:2]
    np.testing.assert_allclose(feats[:2], real, rtol=0, atol=1e-4)
    assert not np.allclose(feats[2:4], next(f for f in corpus.valid if len(f) >= 4)[2:4], atol=1e-2)

    # melforge-sample: priming from an audio file, a temperature per tier.
    out = sample_from_checkpoint(
        tmp_path / "checkpoints/last.pt", tmp_path / "resampled",
        {"count": 1, "frames": 8, "temperature": [1.0, 0.7, 0.7], "seed": 3, "prime_frames": 4,
         "prime_audio": sample["wav"]},
    )
    normalizer = Normalizer.from_state_dict(load_checkpoint(tmp_path / "checkpoints/last.pt")["normalizer"])
    audio_feats = representation.analyze(read_audio(sample["wav"], 16000))[:4]
    expected = normalizer.denormalize(normalizer.normalize(audio_feats))
    np.testing.assert_allclose(np.load(out[0].npy)[:4], expected, rtol=0, atol=1e-4)
    assert out[0].primed_frames == 4 and len(out[0].tier_nll_per_element) == 3
    with pytest.raises(ValueError, match="sample.prime_frames"):
        sample_from_checkpoint(
            tmp_path / "checkpoints/last.pt", tmp_path / "bad",
            {"count": 1, "frames": 8, "temperature": 1.0, "seed": 0, "prime_frames": 3, "prime_audio": sample["wav"]},
        )


def test_a_run_may_train_one_tier_only(tmp_path, compose_train, tiny_train):
    cfg = compose_train("experiment=speech_tiers_tiny", *tiny_train, *TINY_TIERS, "train.max_steps=2", "tiers.train=[2]")
    metrics = train(cfg, tmp_path)
    assert metrics["tiers_trained"] == [2]
    torch.manual_seed(cfg["seed"])  # the runner initialises the model this way
    init = build_model(cfg, bins=64).state_dict()
    after = load_checkpoint(tmp_path / "checkpoints/last.pt")["model"]
    changed = {k.split(".")[1] for k in after if not torch.equal(after[k], init[k])}
    assert changed == {"1"}  # tiers.1 is tier 2


def test_bad_tier_config_is_named(tmp_path, compose_train, tiny_train):
    with pytest.raises(ValueError, match="data.crop_frames"):
        train(compose_train(*tiny_train, "tiers.layers=[1,1,1]", "data.crop_frames=13"), tmp_path)
    with pytest.raises(ValueError, match="tiers.train"):
        train(compose_train(*tiny_train, "tiers.layers=[1,1]", "tiers.train=[3]"), tmp_path / "b")
    with pytest.raises(ValueError, match="tiers.layers"):
        train(compose_train(*tiny_train, "tiers.layers=[1,0]"), tmp_path / "c")


def test_speaker_twin_conditions_on_four_real_speakers(tmp_path, compose_train, tiny_train):
    cfg = compose_train(
        "experiment=speakers_tiny", *tiny_train, *TINY_TIERS, "train.max_steps=1", "sample.count=2",
    )
    metrics = train(cfg, tmp_path)
    assert metrics["speakers"] == ["en", "fr", "it", "ru"]
    assert [s["speaker"] for s in metrics["samples"]] == ["en", "fr"]
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert state["speakers"] == ["en", "fr", "it", "ru"]
    assert state["model"]["tiers.0.backbone.time_cond.weight"].shape[1] == 4


@pytest.mark.parametrize(
    "experiment,tiers,layers,bins,crop",
    [
        ("speech", 6, [12, 5, 4, 3, 2, 2], 256, 860),
        ("piano", 4, [16, 6, 5, 4], 256, 516),
        ("speakers", 5, [16, 6, 5, 4, 3], 180, 532),
    ],
)
def test_table_2_configs_build_the_tiers_of_the_paper(compose_train, experiment, tiers, layers, bins, crop):
    cfg = compose_train(f"experiment={experiment}", "backbone.hidden_size=4")  # Table 2 width is 512
    assert cfg["tiers"]["layers"] == layers and cfg["representation"]["n_mels"] == bins
    assert cfg["head"]["components"] == 10 and cfg["data"]["crop_frames"] == crop
    assert cfg["representation"]["n_fft"] == 6 * cfg["representation"]["hop_length"]
    assert compose_train(f"experiment={experiment}")["backbone"]["hidden_size"] == 512
    model = build_model(cfg, cond_features=4 if experiment == "speakers" else 0)
    assert model.n_tiers == tiers
    assert [t.backbone.layers for t in model.tiers] == layers
    assert [t.backbone.takes_context for t in model.tiers] == [False] + [True] * (tiers - 1)
    model.schedule.check(crop, bins)  # the crops divide into whole tiers


@pytest.mark.parametrize("experiment", ["speech_tiny", "speech_tiers_tiny", "piano_tiny", "speakers_tiny"])
def test_cpu_twins_compose_and_their_shapes_divide_into_their_tiers(compose_train, experiment):
    cfg = compose_train(f"experiment={experiment}")
    model = build_model(cfg, cond_features=4 if cfg["data"]["speaker_conditioning"] else 0)
    model.schedule.check(cfg["data"]["crop_frames"], cfg["representation"]["n_mels"])
    model.schedule.check(cfg["sample"]["frames"], cfg["representation"]["n_mels"])


def test_a_wall_clock_budget_stops_training_early_with_a_checkpoint(tmp_path, compose_train, tiny_train):
    cfg = compose_train(*tiny_train, "train.max_steps=100000", "train.max_seconds=2")
    metrics = train(cfg, tmp_path)
    assert 0 < metrics["steps"] < 100000
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == metrics["steps"]
    assert np.isfinite(metrics["valid_nll"])
