"""The datasets on real data: Asterisk prompts (Debian), generated audio folders, piano renders."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melforge.core.dataset import DatasetError
from melforge.datasets.asterisk import AsteriskPrompts
from melforge.datasets.audio_folder import AudioFolder
from melforge.datasets.system_packages import ensure_debian_packages

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "dataset"


# --- Asterisk prompts (real speech) ------------------------------------------------------------


def test_asterisk_english_clips_are_real_speech(speech_clips):
    assert len(speech_clips) > 500  # 568 files, minus silence/ (10)
    for clip in speech_clips:
        assert clip.sr == 16000
        assert clip.speaker == "en"
        assert clip.id.startswith("en/") and clip.id.endswith(".g722")
        assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
        assert len(clip.audio) >= 0.1 * 16000
        assert np.all(np.isfinite(clip.audio))
        assert np.abs(clip.audio).max() <= 1.0
        assert np.sqrt(np.mean(clip.audio**2)) > 1e-3, f"{clip.id} is silent"
    total_min = sum(len(c.audio) for c in speech_clips) / 16000 / 60
    assert 20 < total_min < 30
    ids = [c.id for c in speech_clips]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_asterisk_order_and_audio_are_deterministic(speech_clips):
    again = list(AsteriskPrompts(languages=("en",)).clips(16000))
    assert [c.id for c in again] == [c.id for c in speech_clips]
    for a, b in zip(again[:20], speech_clips[:20]):
        np.testing.assert_array_equal(a.audio, b.audio)


def test_asterisk_resampling_halves_length(speech_clips):
    clips_8k = list(itertools.islice(AsteriskPrompts(languages=("en",)).clips(8000), 5))
    for c8, c16 in zip(clips_8k, speech_clips[:5]):
        assert c8.id == c16.id and c8.sr == 8000 and c8.audio.dtype == np.float32
        assert abs(len(c8.audio) - len(c16.audio) / 2) <= 1


def test_asterisk_fingerprint_stable_and_sensitive():
    en = AsteriskPrompts(languages=("en",)).fingerprint()
    assert en == AsteriskPrompts(languages=["en"]).fingerprint()
    assert en != AsteriskPrompts(languages=("fr",)).fingerprint()
    assert en != AsteriskPrompts(languages=("en",), min_duration=0.5).fingerprint()
    assert en != AsteriskPrompts(languages=("en",), exclude_folders=()).fingerprint()


def test_asterisk_min_duration_skips_with_warnings():
    ds = AsteriskPrompts(languages=("en",), min_duration=4.0)
    with pytest.warns(UserWarning) as record:
        kept = list(ds.clips(16000))
    assert kept and all(len(c.audio) >= 4.0 * 16000 for c in kept)
    messages = [str(w.message) for w in record]
    assert any("digits/1.g722" in m and "min_duration" in m for m in messages)
    summary = [m for m in messages if m.startswith("skipped ")]
    assert len(summary) == 1 and re.match(r"skipped (\d+) of (\d+)", summary[0])
    n_skipped = int(re.match(r"skipped (\d+)", summary[0]).group(1))
    assert n_skipped == len([m for m in messages if m.startswith("skipping ")])
    assert n_skipped + len(kept) == len(list(ds._files("en")[1]))


def test_missing_package_without_root_names_the_command(monkeypatch, tmp_path):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    missing = tmp_path / "nothing-here" / "**" / "*.g722"
    with pytest.raises(DatasetError, match=r"apt-get install .*asterisk-core-sounds-xx-g722"):
        ensure_debian_packages(["asterisk-core-sounds-xx-g722"], needed_path=missing)
    ensure_debian_packages(["never-installed"], needed_path=tmp_path)  # present: no-op


# --- AudioFolder ---------------------------------------------------------------------------------


def _tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def audio_tree(tmp_path):
    root = tmp_path / "corpus"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    sf.write(root / "alice" / "a1.wav", _tone(0.5, 16000), 16000)
    sf.write(root / "bob" / "b1.flac", _tone(0.3, 22050, 330.0), 22050)
    left, right = _tone(0.4, 16000, 200.0, 0.8), _tone(0.4, 16000, 300.0, 0.2)
    sf.write(root / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.flac").write_bytes(b"")
    sf.write(root / "bob" / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    (root / "notes.txt").write_text("not audio")
    return root, (left + right) / 2


def test_audio_folder_reads_mixes_and_skips(audio_tree):
    root, stereo_mono = audio_tree
    with pytest.warns(UserWarning) as record:
        clips = list(AudioFolder(root).clips(16000))
    assert [c.id for c in clips] == ["alice/a1.wav", "bob/b1.flac", "stereo.wav"]
    assert [c.speaker for c in clips] == ["alice", "bob", None]
    assert all(c.sr == 16000 and c.audio.dtype == np.float32 and c.audio.ndim == 1 for c in clips)
    np.testing.assert_allclose(clips[2].audio, stereo_mono, atol=1e-6)
    assert abs(len(clips[1].audio) - 0.3 * 16000) <= 1  # 22.05 kHz flac resampled
    messages = [str(w.message) for w in record]
    for bad in ("corrupt.wav", "empty.flac", "bob/zero.wav"):
        assert any(m.startswith("skipping ") and str(root / bad) in m for m in messages), bad
    assert not any("notes.txt" in m for m in messages)
    assert any(m == f"skipped 3 of 6 files in {root}" for m in messages)


def test_audio_folder_resamples_to_requested_rate(audio_tree):
    root, _ = audio_tree
    with pytest.warns(UserWarning):
        clips = {c.id: c for c in AudioFolder(root, extensions=("WAV",)).clips(8000)}
    assert set(clips) == {"alice/a1.wav", "stereo.wav"}
    assert abs(len(clips["alice/a1.wav"].audio) - 4000) <= 1


def test_audio_folder_fingerprint_tracks_files(audio_tree):
    root, _ = audio_tree
    before = AudioFolder(root).fingerprint()
    assert before == AudioFolder(str(root)).fingerprint()
    assert before != AudioFolder(root, extensions=("wav",)).fingerprint()
    sf.write(root / "alice" / "a2.wav", _tone(0.2, 16000), 16000)
    assert before != AudioFolder(root).fingerprint()


def test_audio_folder_empty_or_missing_raises(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError) as err:
        list(AudioFolder(tmp_path).clips(16000))
    assert str(tmp_path) in str(err.value) and ".wav" in str(err.value)
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "missing"))):
        list(AudioFolder(tmp_path / "missing").clips(16000))


# --- Registry and configs ------------------------------------------------------------------------


def test_registry_and_configs():
    from omegaconf import OmegaConf

    from melforge.core.plugins import load_registries

    regs = load_registries(builtins=("melforge.datasets.plugin",), entry_points=(), strict=True)
    for name in ("asterisk_prompts", "audio_folder"):
        assert name in regs.dataset
        assert regs.dataset.get(name).plugin == "melforge.datasets.plugin"
    cfg = OmegaConf.load(CONFIGS / "asterisk_speakers.yaml")
    ds = regs.dataset.build(cfg)
    assert isinstance(ds, AsteriskPrompts) and ds.languages == ("en", "fr", "it", "ru")
    en = regs.dataset.build(OmegaConf.load(CONFIGS / "asterisk_en.yaml"))
    assert en.fingerprint() == AsteriskPrompts(languages=("en",)).fingerprint()
    folder_cfg = OmegaConf.load(CONFIGS / "audio_folder.yaml")
    assert OmegaConf.is_missing(folder_cfg, "root")
    for path in CONFIGS.glob("*.yaml"):
        assert OmegaConf.load(path).name in regs.dataset.names(), path.name


# --- Piano (music21 chorales rendered with FluidSynth) -------------------------------------------


def test_bach_piano_renders_once_then_reads_cache(monkeypatch, tmp_path):
    import melforge.datasets.piano as piano

    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    ds = piano.BachChoralesPiano(chorales=1)
    (clip,) = list(ds.clips(22050))
    assert clip.id == "bach/bwv10.7" and clip.sr == 22050 and clip.speaker is None
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert 20 < len(clip.audio) / 22050 < 120
    assert np.all(np.isfinite(clip.audio)) and 0.05 < np.abs(clip.audio).max() <= 1.0
    assert np.sqrt(np.mean(clip.audio**2)) > 0.01
    cached = ds.cache_folder() / "bwv10.7.wav"
    assert cached.is_file() and str(cached).startswith(str(tmp_path))

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(piano, "render_midi_file", no_render)
    (again,) = list(ds.clips(22050))
    np.testing.assert_array_equal(again.audio, clip.audio)
    (short,) = list(piano.BachChoralesPiano(chorales=1, seconds=5.0).clips(16000))
    assert len(short.audio) == 5 * 16000
    assert ds.fingerprint() != piano.BachChoralesPiano(chorales=2).fingerprint()
    assert ds.fingerprint() != piano.BachChoralesPiano(chorales=1, seconds=5.0).fingerprint()


def _peak_near(audio: np.ndarray, sr: int, freq: float, width: float = 6.0) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    near = spectrum[(freqs > freq - width) & (freqs < freq + width)].max()
    band = spectrum[(freqs > 100) & (freqs < 1000)]
    return near / np.median(band)


def test_render_midi_notes_pitch_and_chord():
    from melforge.datasets.piano import render_midi_notes

    a4 = render_midi_notes(69, 1.0, program=0, sr=16000)
    assert a4.dtype == np.float32 and a4.shape == (int(1.5 * 16000),)
    spectrum = np.abs(np.fft.rfft(a4[:16000]))
    assert abs(np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] - 440.0) < 5
    chord = render_midi_notes([60, 64, 67], 1.0, program=40, sr=22050, release=0.0)
    assert chord.shape == (22050,) and np.abs(chord).max() > 0.02
    for f0 in (261.63, 329.63, 392.0):
        assert _peak_near(chord, 22050, f0) > 20, f0
    assert _peak_near(chord, 22050, 293.66) < _peak_near(chord, 22050, 329.63) / 5  # no D4
    with pytest.raises(ValueError):
        render_midi_notes(128, 1.0)
