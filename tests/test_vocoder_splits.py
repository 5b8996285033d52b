"""The vocoder benchmark's test splits are held out (``benchmarks/vocoder_sets.py``): no vocoder
twin trains on the test speaker, no training data renders with the test soundfont, and the dev
clips are the twins' own validation prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from melforge.core.features import in_valid_split
from melforge.datasets import fluidsynth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import vocoder_sets  # noqa: E402

SPEECH_TWINS = ("hifigan_tiny", "istftnet_tiny", "melgan_tiny", "ddsp_tiny", "nsf_tiny", "nsf_hifigan_tiny")
MUSIC_TWINS = ("ddsp_music_tiny", "pg_vocoder_tiny", "pg_vocoder_mixed_tiny")
MUSIC_DATASETS = ("gm_music", "gm_notes")


@pytest.mark.parametrize("name", SPEECH_TWINS)
def test_no_speech_twin_trains_on_the_test_speaker(compose_train, name):
    cfg = compose_train(f"experiment={name}")
    assert cfg["dataset"]["name"] == "asterisk_prompts"
    assert vocoder_sets.TEST_SPEAKER not in cfg["dataset"]["languages"]
    assert set(cfg["dataset"]["languages"]) == set(vocoder_sets.TRAIN_SPEAKERS)
    geometry = {k: cfg["representation"][k] for k in ("sr", "n_fft", "hop_length", "n_mels", "fmax")}
    assert geometry == {k: vocoder_sets.SPEECH_MEL[k] for k in geometry}


@pytest.mark.parametrize("name", MUSIC_TWINS)
def test_music_twins_train_on_the_training_soundfont_only_at_the_music_geometry(compose_train, name, monkeypatch):
    cfg = compose_train(f"experiment={name}")
    assert cfg["dataset"]["name"] in MUSIC_DATASETS
    geometry = {k: cfg["representation"][k] for k in ("sr", "n_fft", "hop_length", "n_mels", "fmax")}
    assert geometry == {k: vocoder_sets.MUSIC_MEL[k] for k in geometry}
    # every piece renders with a soundfont that is neither the test one nor a copy of it
    # (gm_notes and gm_music by default: render_midi_file's default, FluidR3)
    import inspect

    from melforge.core.plugins import load_registries

    assert inspect.signature(fluidsynth.render_midi_file).parameters["soundfont"].default == vocoder_sets.TRAIN_SOUNDFONT
    held_out = {vocoder_sets.TEST_SOUNDFONT, *vocoder_sets.TEST_SOUNDFONT_COPIES}
    assert vocoder_sets.TRAIN_SOUNDFONT not in held_out
    if cfg["dataset"]["name"] == "gm_music":
        regs = load_registries(builtins=("melforge.datasets.plugin",), entry_points=(), strict=True)
        ds = regs.dataset.build(cfg["dataset"])
        assert not {ds.soundfont(n) for n in ds.names()} & held_out


def test_training_soundfonts_are_not_copies_of_the_test_soundfont():
    """The same notes (C3, C4) on each soundfont the music twins train on against the test
    soundfont, for the four N+C programs: their magnitude spectrograms correlate well below a copy's
    (csound-soundfont's sf_GMbank shares TimGM6mb's samples: >= 0.99 on some programs, hence
    TEST_SOUNDFONT_COPIES)."""
    import librosa

    def spectrogram(soundfont, program):
        audio = fluidsynth.render_note_sequence([[60], [48]], 1.0, program, 22050, effects=False, soundfont=soundfont)
        return np.abs(librosa.stft(audio.ravel(), n_fft=1024))

    def corr(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    from melforge.datasets.notes_chords import INSTRUMENTS

    programs = tuple(INSTRUMENTS.values())  # the N+C programs: Rhodes, church organ, strings, nylon guitar
    test = {p: spectrogram(vocoder_sets.TEST_SOUNDFONT, p) for p in programs}
    for soundfont in ("fluidr3", "musescore", "opl3"):
        worst = max(corr(spectrogram(soundfont, p), test[p]) for p in programs)
        assert worst < 0.97, (soundfont, worst)
    copies = [corr(spectrogram(vocoder_sets.TEST_SOUNDFONT_COPIES[0], p), test[p]) for p in programs]
    assert max(copies) > 0.99, copies


def test_speech_dev_and_test_clips_come_from_their_own_speakers():
    test = vocoder_sets.speech_items("test", 4)
    dev = vocoder_sets.speech_items("dev", 4)
    assert all(i.id.startswith(f"{vocoder_sets.TEST_SPEAKER}/") for i in test), [i.id for i in test]
    assert all(i.id.split("/")[0] in vocoder_sets.TRAIN_SPEAKERS and in_valid_split(i.id, 0.05) for i in dev)
    assert all(len(i.audio) >= 2 * i.sr and i.sr == 16000 for i in test + dev)
    with pytest.raises(ValueError, match="speech split must be 'dev' or 'test'"):
        vocoder_sets.speech_items("train", 4)


def test_the_f0_estimator_ablation_uses_the_music_twins_data_labels_and_split(compose_train):
    import f0_estimator

    cfg = compose_train("experiment=ddsp_music_tiny")
    inv, data = cfg["inverter"], cfg["data"]
    assert (inv["fmin"], inv["fmax"], inv["pyin_frame"]) == (f0_estimator.FMIN, f0_estimator.FMAX, f0_estimator.PYIN_FRAME)
    assert (data["valid_fraction"], data["trim_db"]) == (f0_estimator.VALID_FRACTION, f0_estimator.TRIM_DB)
    assert cfg["dataset"]["name"] == "gm_notes" and inv["estimator_front_channels"] in f0_estimator.DEFAULT_FRONT
    assert (inv["estimator_channels"], inv["estimator_layers"], inv["estimator_kernel"]) == f0_estimator.STACK
    assert inv["estimator_head"] == "bins" and inv["estimator_bin_cents"] == f0_estimator.BIN_CENTS
