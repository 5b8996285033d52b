"""Seed 002's phase-gradient vocoder (issue 11): the loss terms of eq. 7-10 against values worked
out by hand, the network's shapes, direct path and scaled tanh (§3.1), the paper-size config's
parameter count against Table 1's 28 M, a tiny training run through the runner that checkpoints
and resumes exactly, the trained inverter through ``melforge-invert`` on real speech, and the
error when a mel of another geometry reaches it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.fft
import soundfile as sf
import torch

from melforge.plugins.pg_vocoder.losses import (
    dct_matrix, lambda_loss, lfcc_loss, magnitude_loss, offset_loss, power_weight, vocoder_losses, LossWeights,
)
from melforge.plugins.pg_vocoder.network import NetworkSpec, PhaseGradientNet
from melforge.plugins.pg_vocoder.warp import mel_warp


# --- losses (eq. 7-11) -------------------------------------------------------------------------

def test_magnitude_loss_is_the_mean_squared_error():
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (batch 1, frames 2, bins 2)
    assert float(magnitude_loss(pred, torch.zeros_like(pred))) == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_dct_matrix_is_scipys_orthonormal_dct_and_the_lfcc_loss_by_hand():
    x = np.random.default_rng(0).normal(size=12)
    assert np.allclose(dct_matrix(5, 12, torch.float64).numpy() @ x, scipy.fft.dct(x, norm="ortho")[:5])
    # d = M̂ − M = [1, 1] over 2 bins: DCT-II ortho gives c0 = 2/√2 = √2, c1 = cos(π/4) + cos(3π/4) = 0
    pred, target = torch.ones(1, 1, 2), torch.zeros(1, 1, 2)
    assert float(lfcc_loss(pred, target, dct_matrix(2, 2))) == pytest.approx((2 + 0) / 2)
    assert float(lfcc_loss(pred, target, dct_matrix(1, 2))) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="n_lfcc"):
        dct_matrix(3, 2)


def test_offset_loss_is_power_weighted_and_split_by_lambda():
    power = torch.tensor([[[1.0, 3.0, 0.0]]])  # |X|² → weights |X|²/mean = [0.75, 2.25, 0]
    logmag = 0.5 * torch.log(power.clamp_min(1e-30))
    w = power_weight(logmag)
    assert torch.allclose(w, torch.tensor([[[0.75, 2.25, 0.0]]]), atol=1e-6)
    lam = torch.tensor([[[0.9, 0.5, 0.2]]])  # sinusoidal, impulsive (λ = 0.5 is not > 0.5), impulsive
    dm, dn = torch.zeros(1, 1, 3), torch.zeros(1, 1, 3)
    pred_dm = torch.tensor([[[2.0, 100.0, 100.0]]])  # only bin 0's Δm error counts: 4
    pred_dn = torch.tensor([[[100.0, 1.0, 7.0]]])  # bins 1, 2 count: 1, 49 (weight 0)
    expected = (0.75 * 4 + 2.25 * 1 + 0.0 * 49) / 3
    assert float(offset_loss(pred_dm, pred_dn, dm, dn, lam, w)) == pytest.approx(expected)


def test_lambda_loss_and_the_weighted_sum_of_eq_11():
    w = torch.tensor([[[0.5, 1.5]]])
    assert float(lambda_loss(torch.tensor([[[1.0, 0.0]]]), torch.full((1, 1, 2), 0.5), w)) == pytest.approx(
        (0.5 * 0.25 + 1.5 * 0.25) / 2
    )
    g = torch.Generator().manual_seed(0)
    target = {k: torch.rand(2, 3, 8, generator=g) for k in ("logmag", "dm", "dn", "lam")}
    pred = {k: torch.rand(2, 3, 8, generator=g) for k in ("logmag", "dm", "dn", "lam")}
    terms = vocoder_losses(pred, target, dct_matrix(4, 8), LossWeights(0.1, 4))
    assert float(terms["loss"]) == pytest.approx(
        float(terms["magnitude"] + 0.1 * terms["lfcc"] + terms["offsets"] + terms["lambda"]), rel=1e-6
    )


# --- the network (§3.1) -------------------------------------------------------------------------

def _filterbank(sr=22050, n_fft=256, n_mels=16):
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)


def test_warp_rows_sum_to_one_and_the_direct_path_recovers_a_flat_spectrum():
    basis = _filterbank()
    warp, log_gain = mel_warp(basis, 22050)
    assert warp.shape == (129, 16) and np.allclose(warp.sum(axis=1), 1.0)
    net = PhaseGradientNet(warp, log_gain, NetworkSpec(layers=2, channels=4))
    power = 0.3  # |X_k|² = 0.3 in every bin → M_m = 0.3 g_m
    log_mel = torch.log(torch.from_numpy(power * basis.sum(axis=1)).float())[None, None]  # (1, 1, n_mels)
    assert torch.allclose(net.direct_path(log_mel), torch.full((1, 1, 129), 0.5 * math.log(power)), atol=1e-5)


def test_network_shapes_and_the_scaled_tanh_around_the_direct_path():
    basis = _filterbank()
    net = PhaseGradientNet(*mel_warp(basis, 22050), NetworkSpec(layers=3, channels=8, beta=5.0))
    x = torch.randn(2, 10, 16)
    out = net(x)
    assert set(out) == {"logmag", "dm", "dn", "lam"} and all(v.shape == (2, 10, 129) for v in out.values())
    assert ((out["lam"] > 0) & (out["lam"] < 1)).all()
    # the statistics rescale; with the convolutions silenced the magnitude is f_β(direct path)
    net.set_statistics({"logmag": (np.full(129, -2.0), np.full(129, 0.5)), "dm": (np.zeros(129), np.full(129, 3.0)),
                        "dn": (np.ones(129), np.ones(129)), "mel": (np.zeros(16), np.ones(16))})
    with torch.no_grad():
        net.convs[-1].weight.zero_()
        net.convs[-1].bias.zero_()
    out = net(x)
    z = (net.direct_path(x) + 2.0) / 0.5
    assert torch.allclose(out["logmag"], 5.0 * torch.tanh(z / 5.0) * 0.5 - 2.0, atol=1e-5)
    assert torch.allclose(out["dm"], torch.zeros(2, 10, 129)) and torch.allclose(out["dn"], torch.ones(2, 10, 129))
    huge = net(torch.full((1, 4, 16), 200.0))["logmag"]  # far above the targets: bounded at β deviations
    assert torch.allclose(huge, torch.full_like(huge, 5.0 * 0.5 - 2.0), atol=1e-4)
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(2, 10, 15))


def test_paper_size_config_has_the_parameters_its_comment_works_out(compose_train):
    """``experiment=pg_vocoder`` (§3.1's 8 × 1536 × 3 on 96 mels and 1025 bins) has 61,817,348
    parameters, as ``configs/experiment/pg_vocoder.yaml`` works out, and Table 1's 28 M is out of
    reach of §3.1's sizes: the six hidden convolutions alone exceed it."""
    from melforge.core.plugins import registries

    cfg = compose_train("experiment=pg_vocoder")
    regs = registries()
    rep_cfg, inv_cfg = dict(cfg["representation"]), dict(cfg["inverter"])
    analysis = regs.of("representation").create(rep_cfg.pop("name"), **rep_cfg).mel_analysis()
    vocoder = regs.of("inverter").create(inv_cfg.pop("name"), **inv_cfg)
    net = PhaseGradientNet(*mel_warp(np.asarray(analysis.mel_basis), analysis.stft.sr), vocoder.spec)
    spec = vocoder.spec
    assert (net.n_mels, net.n_bins, spec.layers, spec.channels, spec.kernel_size) == (96, 1025, 8, 1536, 3)
    sizes = [sum(p.numel() for p in conv.parameters()) for conv in net.convs if isinstance(conv, torch.nn.Conv1d)]
    assert sizes == [443_904] + [7_079_424] * 6 + [18_896_900]
    assert net.parameter_count() == sum(sizes) == 61_817_348
    lam_channel = 3 * 1536 * 1025 + 1025  # the learned λ's share of the output layer
    assert net.parameter_count() - lam_channel == 57_093_123  # the paper's three outputs
    assert 6 * 7_079_424 > 28e6  # the hidden 1536 → 1536 convolutions alone


# --- training through the runner, the trained inverter ----------------------------------------

TINY = ("inverter.channels=8", "inverter.layers=2", "data.crop_frames=16", "data.valid_crops=2",
        "data.valid_fraction=0.3", "train.batch_size=2", "train.log_every=1", "train.valid_every=2",
        "train.checkpoint_every=2", "threads=1")


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory, speech_clips):
    root = tmp_path_factory.mktemp("speech")
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:8]):
        sf.write(root / f"{k}.wav", clip.audio, clip.sr)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, speech_folder):
    """A 4-step run, one cut at step 2 and resumed, and the configs used."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.learners import train as train_inverter

    def cfg(*extra):
        with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
            c = compose(config_name="train", overrides=["experiment=pg_vocoder_tiny", "dataset=audio_folder",
                                                        f"dataset.root={speech_folder}", *TINY, *extra])
        return OmegaConf.to_container(c, resolve=True)

    base = tmp_path_factory.mktemp("runs")
    straight = train_inverter(cfg("train.max_steps=4"), base / "straight")
    train_inverter(cfg("train.max_steps=2"), base / "cut")
    # how the vocoder inverts (inference_keys) may change between the calls; its size may not
    resumed = train_inverter(cfg("train.max_steps=4", "inverter.refine_partials=true", "inverter.harmonic_prior=true",
                                 "inverter.integrator=pghi"), base / "cut")
    try:
        train_inverter(cfg("train.max_steps=5", "inverter.channels=6"), base / "cut")
        refused = None
    except ValueError as err:
        refused = err
    return base, straight, resumed, refused


def test_a_tiny_training_run_writes_checkpoints_and_metrics_and_resumes_exactly(trained):
    from melforge.core.checkpoint import load_checkpoint

    base, straight, resumed, refused = trained
    assert straight["steps"] == resumed["steps"] == 4 and straight["trains"] == "inverter"
    # the resume above changed inference keys only; a changed network size is refused by name
    assert "trained with another inverter" in str(refused) and "inverter.channels" in str(refused)
    assert "refine_partials" not in str(refused) and "harmonic_prior" not in str(refused)
    metrics = json.loads((base / "straight/metrics.json").read_text())
    assert math.isfinite(metrics["valid_loss"]) and metrics["valid_loss"] < metrics["valid_loss_step0"]
    assert {"valid_magnitude", "valid_lfcc", "valid_offsets", "valid_lambda", "train_loss"} <= set(metrics)
    assert (base / "straight/tensorboard").is_dir() and (base / "straight/config.yaml").exists()
    a, b = load_checkpoint(base / "straight/checkpoints/last.pt"), load_checkpoint(base / "cut/checkpoints/last.pt")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert resumed["valid_loss"] == straight["valid_loss"]
    assert a["representation"]["name"] == "log_mel" and a["representation"]["sr"] == 22050
    assert a["model"]["logmag_std"].shape == (513,) and float(a["model"]["mel_std"].min()) > 0  # fitted statistics


def test_the_trained_inverter_through_melforge_invert(trained, speech_clips, tmp_path, capsys, monkeypatch):
    """melforge-invert's own task, in process: only inverter keys are given; the analysis is the checkpoint's."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.cli.invert import _task
    from melforge.core.inversion import check_invert_config

    base = trained[0]
    clip = next(c for c in speech_clips if len(c.audio) > c.sr)
    sf.write(tmp_path / "in.wav", clip.audio[: clip.sr], clip.sr)  # 16 kHz: analysed at the checkpoint's 22,050 Hz
    monkeypatch.chdir(tmp_path)
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = compose("invert", overrides=["input=in.wav", "output=out.wav", "inverter=pg_vocoder",
                                           f"inverter.checkpoint={base / 'straight/checkpoints/last.pt'}"])
    cfg = OmegaConf.to_container(cfg, resolve=True)
    assert cfg["representation"]["sr"] == 16000  # the invert app's default, which the checkpoint overrides
    check_invert_config(cfg)
    _task(cfg, str(tmp_path))
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 22050 and abs(len(out) - 22050) <= 256 and np.isfinite(out).all() and np.abs(out).max() > 1e-4
    printed = capsys.readouterr().out
    assert "[pg_vocoder, log_mel]" in printed and "SC" in printed


def test_the_harmonic_prior_rewrites_the_low_bins_only(trained):
    """``harmonic=True``: on a low harmonic tone (f0 3.3 bins, 71 Hz) the bins below the combs'
    top take the comb's offsets (every main-lobe bin points at its partial within 0.02 bins) and
    λ = 1; the bins above keep the network's magnitude, Δm and λ exactly."""
    from melforge.core.stft import stft_magnitude
    from melforge.plugins.pg_vocoder.harmonic_fit import fit_harmonic_combs
    from melforge.plugins.pg_vocoder.inverter import build_pg_vocoder

    vocoder = build_pg_vocoder(checkpoint=str(trained[0] / "straight/checkpoints/last.pt"))
    t = vocoder.trained
    f0 = 3.3
    time = np.arange(t.stft.sr) / t.stft.sr
    audio = sum(np.sin(2 * np.pi * h * f0 * t.stft.sr / t.stft.n_fft * time) / h for h in range(1, 17))
    mel = stft_magnitude(audio, t.stft) ** 2 @ t.mel_basis.T.astype(np.float64)
    plain, prior = vocoder.predict(mel, harmonic=False), vocoder.predict(mel, harmonic=True)
    top = fit_harmonic_combs(mel, t.mel_basis, t.stft).top
    for key in ("magnitude", "dm", "lam", "dn"):
        np.testing.assert_array_equal(prior[key][:, top:], plain[key][:, top:])
    inner = slice(4, -4)
    assert (prior["lam"][inner, :top] == 1).all()
    partials = f0 * np.arange(1, 17)
    lobe = np.array([m for m in range(top) if np.abs(partials - m).min() < 1.0])
    nearest = partials[np.abs(partials[None, :] - lobe[:, None]).argmin(axis=1)]
    assert np.abs(prior["dm"][inner][:, lobe] + lobe - nearest).max() < 0.02


def test_a_mel_of_another_geometry_is_refused_naming_both(trained):
    from melforge.plugins.pg_vocoder.inverter import build_pg_vocoder
    from melforge.plugins.representations.log_mel import LogMel

    vocoder = build_pg_vocoder(checkpoint=str(trained[0] / "straight/checkpoints/last.pt"))
    assert vocoder.representation_config()["n_mels"] == 80
    other = LogMel(sr=16000, n_mels=64)  # what a speech_tiny MelNet samples
    with pytest.raises(ValueError, match=r"sr 22050 Hz, n_fft 1024, hop 256, window 1024, 80 mels.*sr 16000 Hz.*64 mels"):
        other.to_audio(np.zeros((20, 64), np.float32), vocoder)
    same = LogMel(sr=22050, n_fft=1024, n_mels=80, fmax=11025.0)
    audio = same.to_audio(np.log(np.full((20, 80), 1e-2, np.float32)), vocoder)
    assert audio.shape == (19 * 256,) and np.isfinite(audio).all()
    untrained = build_pg_vocoder()
    with pytest.raises(ValueError, match="inverter.checkpoint"):
        same.to_audio(np.zeros((20, 80), np.float32), untrained)


def test_a_melnet_run_with_a_mismatched_trained_vocoder_stops_before_training(trained, compose_train, tiny_train, tmp_path):
    from melforge.core.learners import train

    ckpt = trained[0] / "straight/checkpoints/last.pt"
    cfg = compose_train(*tiny_train, "inverter=pg_vocoder", f"inverter.checkpoint={ckpt}", "sample.count=1")
    with pytest.raises(ValueError, match=r"inverter: pg_vocoder was trained on the representation .*'n_mels': 80.*"
                                         r"'n_mels': 64"):
        train(cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists()  # refused before the first step


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    from melforge.core.checkpoint import save_checkpoint
    from melforge.plugins.pg_vocoder.inverter import build_pg_vocoder

    state = {"step": 1, "model": {}, "config": {"backbone": {"name": "melnet"}}, "normalizer": {}}
    path = save_checkpoint(tmp_path, 1, state)
    with pytest.raises(ValueError, match=r"not a pg_vocoder checkpoint \(its run trained a melnet model\)"):
        build_pg_vocoder(checkpoint=str(path))


def test_an_inverter_run_goes_through_the_shared_placement_in_bf16(tmp_path, speech_folder):
    """``experiment=pg_vocoder_tiny device=cpu precision=bf16``: the vocoder trains through the
    same placement code as a model (autocast on the device, the losses in fp32), and the run's
    config carries no model keys."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.config_schema import drop_absent
    from melforge.core.learners import train

    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        c = compose(config_name="train", overrides=["experiment=pg_vocoder_tiny", "dataset=audio_folder",
                                                    f"dataset.root={speech_folder}", *TINY, "train.max_steps=2",
                                                    "device=cpu", "precision=bf16"])
    cfg = drop_absent(OmegaConf.to_container(c, resolve=True))
    assert not {"backbone", "head", "sampler", "tiers", "sample"} & set(cfg)
    metrics = train(cfg, tmp_path)
    assert metrics["precision"] == "bf16" and metrics["device"] == "cpu" and metrics["trains"] == "inverter"
    assert math.isfinite(metrics["valid_loss"]) and metrics["steps"] == 2
    assert "train_loss" in metrics and metrics["monitor"] == "loss"


def test_melforge_report_shows_a_vocoder_sweeps_loss_table_and_curves(trained):
    """``melforge-report`` on vocoder runs (the fixture's two jobs, ``straight`` and ``cut``): its
    table and curves are the learner's monitored figure, the loss, not a blank NLL column."""
    import csv

    from melforge.core.report import write_report

    base = trained[0]
    jobs, paths = write_report(base)
    assert sorted(j.name for j in jobs) == ["cut", "straight"] and all(j.monitor == "loss" for j in jobs)
    rows = {r["job"]: r for r in csv.DictReader(paths["report.csv"].open())}
    straight = json.loads((base / "straight/metrics.json").read_text())
    assert float(rows["straight"]["valid_loss"]) == pytest.approx(straight["valid_loss"], rel=1e-12)
    assert float(rows["straight"]["train_loss"]) == pytest.approx(straight["train_loss"], rel=1e-12)
    assert float(rows["straight"]["best_valid_loss"]) <= straight["valid_loss_step0"]
    assert "valid_nll" not in rows["straight"]
    assert paths["curves.png"].read_bytes()[:4] == b"\x89PNG"
    page = paths["report.html"].read_text()
    assert "valid loss" in page and "loss against step" in page
    assert "valid loss" in paths["report.md"].read_text()
