"""The conformance kit (melforge.testing) on the parts that are not models: every built-in
inverter that needs no checkpoint, the built-in representations on real speech, and the
learners of the one training loop (the toy GAN of tests/support, MelNet); and that each check
catches what it is meant to catch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from melforge.core.inverter import Inverter, signal_length
from melforge.core.learners import build_learner
from melforge.core.plugins import load_registries
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude
from melforge.plugins.representations.log_stft import LogStft
from melforge.plugins.representations.mu_law import MuLaw
from melforge.testing import check_draw, check_inverter, check_learner, check_one_step, check_representation

sys.path.insert(0, str(Path(__file__).parent / "support"))
from toy_gan import ToyGan, config  # noqa: E402

#: A small geometry, so that every inverter runs in well under a second on half a second of speech.
STFT = StftParams(sr=16000, n_fft=256, hop_length=64, win_length=256)

#: Every built-in inverter that needs no checkpoint, with few iterations (the trained vocoders need one).
INVERTERS = {
    "griffin_lim": {"name": "griffin_lim", "n_iter": 4},
    "griffin_lim from pghi": {"name": "griffin_lim", "n_iter": 4, "init": "pghi"},
    "pghi": {"name": "pghi"},
    "pghi + gradient": {"name": "pghi", "refine": "griffin_lim+gradient", "gl_iters": 2, "refine_iters": 3},
    "gradient": {"name": "gradient", "n_iter": 3, "init_iters": 3},
}
NEEDS_CHECKPOINT = {"pg_vocoder", "hifigan", "melgan", "istftnet", "ddsp", "nsf", "nsf_hifigan"}


@pytest.fixture(scope="module")
def regs():
    return load_registries()


@pytest.fixture
def half_second(speech_audio) -> np.ndarray:
    """Half a second of real speech from the middle of the recording (voiced, not silence)."""
    audio, sr = speech_audio
    start = len(audio) // 2 - sr // 4
    return audio[start : start + sr // 2]


# --- inverters ----------------------------------------------------------------------------------


def test_the_inverter_cases_cover_every_registered_inverter(regs):
    assert {c["name"] for c in INVERTERS.values()} | NEEDS_CHECKPOINT == set(regs.inverter.names())


@pytest.mark.parametrize("case", list(INVERTERS))
def test_builtin_inverters_conform(case, regs, half_second):
    report = check_inverter(regs.inverter.build(INVERTERS[case]), STFT, half_second)
    assert report.accepts == ["invert", "invert_mel"] and report.refused == {}
    assert report.stateless == ["invert", "invert_mel"]


def test_an_inverter_without_its_checkpoint_is_reported_as_refusing_both_inputs(regs, half_second):
    with pytest.raises(AssertionError, match="refused both") as err:
        check_inverter(regs.inverter.build({"name": "pg_vocoder"}), STFT, half_second)
    assert "no trained network" in str(err.value)


class Silence(Inverter):
    """A conforming magnitude inverter: validated input, zeros of the right length."""

    def invert(self, magnitude, stft, *, length=None):
        magnitude = check_magnitude(magnitude, stft)
        return np.zeros(signal_length(stft, magnitude.shape[0], length), np.float32)


class Noisy(Silence):
    """Keeps a generator across calls: the second call differs from the first."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def invert(self, magnitude, stft, *, length=None):
        return super().invert(magnitude, stft, length=length) + self.rng.standard_normal(1).astype(np.float32)


class GlobalNoise(Silence):
    """Draws from numpy's global generator: stochastic, yet the same for the same seed."""

    def invert(self, magnitude, stft, *, length=None):
        out = super().invert(magnitude, stft, length=length)
        return out + np.random.standard_normal(out.shape).astype(np.float32)


class MagnitudeOnly(Silence):
    """Refuses a mel power, but with an AttributeError instead of a ValueError."""

    def invert_mel(self, mel_power, mel_basis, stft, *, length=None):
        return self.mel_network(mel_power)


class RefusesMel(Silence):
    def invert_mel(self, mel_power, mel_basis, stft, *, length=None):
        raise ValueError("refuses_mel: only a linear magnitude")


class Float64(Silence):
    def invert(self, magnitude, stft, *, length=None):
        return super().invert(magnitude, stft, length=length).astype(np.float64)


class IgnoresLength(Silence):
    def invert(self, magnitude, stft, *, length=None):
        return super().invert(magnitude, stft)


class Unchecked(Inverter):
    def invert(self, magnitude, stft, *, length=None):
        frames = np.asarray(magnitude).shape[0]
        return np.zeros(signal_length(stft, frames, length), np.float32)


def test_a_conforming_toy_inverter_passes_and_a_clean_refusal_is_reported(half_second):
    assert check_inverter(Silence(), STFT, half_second).accepts == ["invert", "invert_mel"]
    assert check_inverter(GlobalNoise(), STFT, half_second).stateless == ["invert", "invert_mel"]
    report = check_inverter(RefusesMel(), STFT, half_second)
    assert report.accepts == ["invert"] and report.refused == {"invert_mel": "refuses_mel: only a linear magnitude"}


@pytest.mark.parametrize("inverter, message", [
    (Noisy(), "keeps state between calls"),
    (MagnitudeOnly(), "raised AttributeError on a valid input"),
    (Float64(), "dtype float64, expected float32"),
    (IgnoresLength(), r"IgnoresLength.invert \(length=4000\) returned shape \(3968,\), expected \(4000,\)"),
    (Unchecked(), "accepted a magnitude with one bin too few"),
])
def test_the_inverter_check_catches(inverter, message, half_second):
    with pytest.raises(AssertionError, match=message):
        check_inverter(inverter, STFT, half_second)


# --- representations ----------------------------------------------------------------------------

#: name → (inverter config, feature tolerance, sample tolerance), measured on one second of speech:
#: Griffin-Lim (64 iterations) re-analyses to 0.070 (log_mel) and 0.099 (log_stft, whose floor
#: bins are noisier); μ-law decodes to the same levels (0) within half the top level step
#: (1 − 256^(−2/255)) / 2 ≈ 0.0213.
REPRESENTATIONS = {
    "log_mel": ({"name": "griffin_lim", "n_iter": 64}, 0.1, None),
    "log_stft": ({"name": "griffin_lim", "n_iter": 64}, 0.15, None),
    "mu_law": (None, 0.0, 0.0215),
}


@pytest.mark.parametrize("name", list(REPRESENTATIONS))
def test_builtin_representations_conform(name, regs, speech_audio):
    audio, sr = speech_audio
    inverter_cfg, feature_tol, sample_tol = REPRESENTATIONS[name]
    inverter = regs.inverter.build(inverter_cfg) if inverter_cfg else None
    rep = regs.representation.build({"name": name})
    report = check_representation(rep, audio[:sr], inverter=inverter, feature_tolerance=feature_tol,
                                  sample_tolerance=sample_tol)
    assert report.frames == (sr if name == "mu_law" else 1 + sr // 256)
    assert 0 <= report.feature_error <= feature_tol
    if name == "mu_law":
        assert report.feature_error == 0.0 and 0.0 < report.sample_error <= sample_tol


def test_the_representation_check_catches_a_poor_inverter_and_an_unchecked_input(regs, speech_audio):
    audio, sr = speech_audio
    random_phase = regs.inverter.build({"name": "griffin_lim", "n_iter": 0})
    with pytest.raises(AssertionError, match="more than the tolerance 0.15"):
        check_representation(LogStft(), audio[:sr], inverter=random_phase, feature_tolerance=0.15)

    class Lenient(MuLaw):
        def analyze(self, audio):
            return super().analyze(np.nan_to_num(np.atleast_1d(np.asarray(audio, np.float32)).ravel()))

    with pytest.raises(AssertionError, match="accepted audio holding NaN"):
        check_representation(Lenient(), audio[:sr], feature_tolerance=0.0)


# --- learners -----------------------------------------------------------------------------------


def test_the_toy_gan_conforms(tmp_path):
    report = check_learner(lambda cfg, state: ToyGan(cfg), config(0), tmp_path, steps=4)
    assert report.optimizers == report.moved == {"discriminator": 4, "generator": 4}
    assert report.fixed == [] and {"model", "optimizers", "schedulers", "divergence"} <= set(report.compared)


def test_melnet_conforms(tmp_path, compose_train, tiny_train):
    cfg = compose_train(*tiny_train, "device=cpu")
    report = check_learner(build_learner, cfg, tmp_path, steps=2)
    n = len(list(build_learner(cfg).module.parameters()))
    assert report.optimizers == report.moved == {"model": n}
    assert {"model", "optimizers", "normalizer"} <= set(report.compared)


def test_the_phase_gradient_vocoder_learner_conforms(tmp_path, speech_clips):
    """The built-in trainable inverter's learner passes the same checks (tiny network, real speech)."""
    import soundfile as sf
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.config_schema import drop_absent

    folder = tmp_path / "audio"
    folder.mkdir()
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:6]):
        sf.write(folder / f"{k}.wav", clip.audio, clip.sr)
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        c = compose(config_name="train", overrides=[
            "experiment=pg_vocoder_tiny", "dataset=audio_folder", f"dataset.root={folder}", "inverter.channels=8",
            "inverter.layers=2", "data.crop_frames=16", "data.valid_crops=2", "data.valid_fraction=0.3",
            "train.batch_size=2", "train.valid_every=2", "train.checkpoint_every=2", "threads=1", "device=cpu"])
    cfg = drop_absent(OmegaConf.to_container(c, resolve=True))
    report = check_learner(build_learner, cfg, tmp_path / "runs", steps=2)
    n = len(list(build_learner(cfg).module.parameters()))
    assert report.optimizers == report.moved == {"model": n}
    assert {"model", "optimizers", "mel_basis", "stft"} <= set(report.compared)


class Stray(ToyGan):
    """A bias the discriminator's optimiser does not own, moved by hand in every step."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.net["offset"] = nn.Linear(1, 1)

    def train_step(self, batch, ctx):
        with torch.no_grad():
            self.net["offset"].bias.add_(1.0)
        return super().train_step(batch, ctx)


class Forgetful(ToyGan):
    """Scales its losses by a step count it does not checkpoint: a resumed run differs."""

    calls = 0

    def train_step(self, batch, ctx):
        self.calls += 1
        z, real = batch
        return super().train_step((z * self.calls, real), ctx)


class GlobalDraw(ToyGan):
    def draw(self, batch_size, generator):
        return torch.randn(batch_size, 4), self.data[:batch_size]


class Undeclared(ToyGan):
    def optimizers(self):
        return super().optimizers()[:1]  # the generator's optimiser is used but not declared


class Outside(ToyGan):
    def optimizers(self):
        specs = super().optimizers()
        specs[0].parameters.append(nn.Parameter(torch.zeros(3)))  # held by no module: never checkpointed
        return specs


class Swapped(ToyGan):
    def optimizers(self):
        return super().optimizers()[::-1]  # the step updates the discriminator first


class NoMonitor(ToyGan):
    def train_step(self, batch, ctx):
        return {"g_loss": super().train_step(batch, ctx)["g_loss"]}


class ShortDraw(ToyGan):
    def draw(self, batch_size, generator):
        z, real = super().draw(batch_size, generator)
        return z, real[:-1]


@pytest.mark.parametrize("learner, message", [
    (Stray, r"no optimiser owns: \['offset.bias'\]"),
    (Undeclared, r"updates optimiser 'generator', but optimizers\(\) declares only \['discriminator'\]"),
    (Outside, r"optimiser 'discriminator' owns 1 parameter\(s\) outside learner.module \(shapes \[\(3,\)\]\)"),
    (Swapped, r"first updates \['discriminator', 'generator'\]; optimizers\(\) must list them in that order"),
    (NoMonitor, "train_step's figures lack its monitor 'd_loss'"),
])
def test_the_one_step_check_catches(learner, message, tmp_path):
    with pytest.raises(AssertionError, match=message):
        check_one_step(lambda cfg, state: learner(cfg), config(0), tmp_path)


def test_the_one_step_check_reports_the_updates_in_order(tmp_path):
    report = check_one_step(lambda cfg, state: ToyGan(cfg), config(0), tmp_path)
    assert report.updated == ["discriminator", "generator"] and report.compared == []


def test_the_resume_and_draw_checks_catch(tmp_path):
    with pytest.raises(AssertionError, match=r"4 steps straight and 2 \+ a resume to 4 differ at model\."):
        check_learner(lambda cfg, state: Forgetful(cfg), config(0), tmp_path / "forgetful", steps=4)
    with pytest.raises(ValueError, match="steps must be even"):
        check_learner(lambda cfg, state: ToyGan(cfg), config(0), tmp_path / "odd", steps=3)
    for learner, message in ((GlobalDraw, "not a pure function of its generator: batch\\[0\\]"),
                             (ShortDraw, "returned 7 rows in field 1")):
        toy = learner(config(0))
        toy.prepare()
        with pytest.raises(AssertionError, match=message):
            check_draw(toy, 8)
