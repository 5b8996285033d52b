"""The vocoder benchmark's test splits are held out (``benchmarks/vocoder_sets.py``): no vocoder
twin trains on the test speaker, no training data renders with the test soundfont, and the dev
clips are the twins' own validation prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from melforge.core.features import in_valid_split
from melforge.datasets import fluidsynth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import vocoder_sets  # noqa: E402

SPEECH_TWINS = ("hifigan_tiny", "istftnet_tiny", "melgan_tiny", "ddsp_tiny", "nsf_tiny")
MUSIC_TWINS = ("ddsp_music_tiny", "pg_vocoder_tiny")
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
    # gm_music renders through render_midi_file with its default soundfont: FluidR3, not the test one
    import inspect

    assert inspect.signature(fluidsynth.render_midi_file).parameters["soundfont"].default == vocoder_sets.TRAIN_SOUNDFONT
    assert vocoder_sets.TEST_SOUNDFONT != vocoder_sets.TRAIN_SOUNDFONT


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
