"""The inverter contract: what an inverter takes (magnitude, mel power), what a representation
gives it, checked by declaration (``Inverter.accepts``), a trainable subtype, and
``melforge-invert`` on a waveform representation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from melforge.core.inversion import inversion_parts, invert_file
from melforge.core.learners import build_learner
from melforge.core.plugins import registries
from melforge.inverters.griffin_lim import GriffinLim


class MelOnlyGL(GriffinLim):
    """An inverter that declares it takes mel power only."""

    inputs = frozenset({"mel_power"})


def _mel_only_inverter():
    return MelOnlyGL(n_iter=4)


def test_a_representation_gives_what_an_inverter_declares_it_takes():
    regs = registries()
    log_stft = regs.representation.build({"name": "log_stft"})
    log_mel = regs.representation.build({"name": "log_mel"})
    mu_law = regs.representation.build({"name": "mu_law"})
    assert (log_stft.inverter_input, log_mel.inverter_input, mu_law.inverter_input) == ("magnitude", "mel_power", None)
    gl = regs.inverter.build({"name": "griffin_lim"})
    assert gl.accepts("log_stft", log_stft) is None and gl.accepts("log_mel", log_mel) is None
    mel_only = _mel_only_inverter()
    assert mel_only.accepts("log_mel", log_mel) is None
    assert mel_only.accepts("log_stft", log_stft) == "takes mel_power, but log_stft gives magnitude"
    assert mel_only.accepts("mu_law", mu_law) is None  # a waveform decodes itself


def test_only_a_mel_representation_has_a_mel_analysis():
    regs = registries()
    analysis = regs.representation.build({"name": "log_mel", "n_mels": 40}).mel_analysis()
    assert analysis.mel_basis.shape == (40, 513) and analysis.mel_basis.dtype == np.float32 and analysis.floor > 0
    with pytest.raises(ValueError, match="LogStft is not a mel representation"):
        regs.representation.build({"name": "log_stft"}).mel_analysis()


def test_trainable_inverters_are_a_declared_subtype():
    regs = registries()
    assert regs.inverter.build({"name": "griffin_lim"}).trainable() is None
    vocoder = regs.inverter.build({"name": "pg_vocoder"})
    assert vocoder.trainable() is vocoder and "checkpoint" in vocoder.inference_keys
    cfg = {"trains": "inverter", "inverter": {"name": "griffin_lim"}}
    with pytest.raises(ValueError, match="inverter.name='griffin_lim': this inverter has no parameters to train"):
        build_learner(cfg)
    with pytest.raises(ValueError, match="trains='vocoder': expected one of model, inverter"):
        build_learner({"trains": "vocoder"})


def test_melforge_invert_on_a_waveform_representation_decodes_it(tmp_path, speech_audio):
    audio, sr = speech_audio
    audio = audio[: sr * 2]
    sf.write(tmp_path / "in.wav", audio, sr)
    cfg = {"representation": {"name": "mu_law", "sr": sr}, "inverter": {"name": "griffin_lim"}}
    representation, inverter = inversion_parts(cfg)
    report = invert_file(tmp_path / "in.wav", tmp_path / "out.wav", representation, inverter)
    out, out_sr = sf.read(tmp_path / "out.wav", dtype="float32")
    assert out_sr == sr and len(out) == len(audio) == report["samples"]
    # 8-bit mu-law: the decoded waveform is the input within the quantisation step (about 1/256 near 0)
    assert np.max(np.abs(out - audio)) < 0.05 and report["sc_db"] < -20

