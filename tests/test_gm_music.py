"""Training music for seed 002's vocoder: corpus pieces on a mix of General-MIDI programs."""

from __future__ import annotations

import numpy as np
import pytest

from melforge.datasets import gm_music


def test_choice_of_pieces_and_programs_is_deterministic_and_mixed():
    names = gm_music.GMMusic(pieces=40).names()
    assert names == gm_music.GMMusic(pieces=40).names()
    assert names[:3] == gm_music.GMMusic(pieces=3).names()  # a prefix: programs do not depend on `pieces`
    ds = gm_music.GMMusic(pieces=40)
    programs = [ds.program(n) for n in names]
    assert set(programs) == {0, 4, 19, 48, 24, 46}  # piano, Rhodes, organ, strings, nylon guitar, harp
    assert all(programs.count(p) >= 6 for p in gm_music.PROGRAMS)
    collections = {n.split("/")[0] for n in names}
    assert len(collections) >= 15 and "bach" in collections
    assert sum(n.startswith("bach/") for n in names) < 10  # beyond the Bach chorales
    assert ds.clip_id(names[0]).startswith("gm/bach/") and ds.clip_id(names[0]).endswith("@piano")
    with pytest.raises(ValueError, match="pieces"):
        gm_music.GMMusic(pieces=0)


def test_renders_are_cached_labelled_and_failures_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    ds = gm_music.GMMusic(pieces=2, seconds=4.0)
    clips = list(ds.clips(22050))
    assert [c.id for c in clips] == ["gm/bach/bwv127.5@piano", "gm/monteverdi/madrigal.3.11@rhodes"]
    assert [c.speaker for c in clips] == ["piano", "rhodes"]
    for clip in clips:
        assert clip.sr == 22050 and clip.audio.dtype == np.float32 and clip.audio.shape == (4 * 22050,)
        assert np.sqrt(np.mean(clip.audio**2)) > 0.01 and np.abs(clip.audio).max() <= 1.0
    # rendered at the asked rate (sr_render: null), one cache per rate
    assert (tmp_path / "gm_music" / "v1-sr22050" / "bach__bwv127.5.p0.s4.wav").is_file()
    assert ds.fingerprint() != gm_music.GMMusic(pieces=3, seconds=4.0).fingerprint()

    import melforge.datasets.piano as piano

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(piano, "render_midi_file", no_render)
    again = list(ds.clips(22050))
    np.testing.assert_array_equal(again[1].audio, clips[1].audio)

    # a score music21 cannot read is skipped with a warning, and remembered
    bad = tmp_path / "broken.mxl"
    bad.write_text("not a score")
    monkeypatch.setattr(gm_music.GMMusic, "score_path", lambda self, name: bad)
    three = gm_music.GMMusic(pieces=3, seconds=4.0)
    with pytest.warns(UserWarning) as caught:
        kept = list(three.clips(22050))
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("melforge: skipping score palestrina/") for m in messages), messages
    assert any("1 of 3 scores could not be rendered" in m for m in messages), messages
    assert [c.id for c in kept] == [c.id for c in clips]
    assert list((tmp_path / "gm_music" / "v1-sr22050").glob("*.failed"))
    with pytest.warns(UserWarning, match="1 of 3 scores could not be rendered"):
        assert len(list(three.clips(22050))) == 2


def test_registered_with_its_config():
    from omegaconf import OmegaConf

    from melforge.core.plugins import load_registries

    regs = load_registries(builtins=("melforge.datasets.plugin",), entry_points=(), strict=True)
    cfg = OmegaConf.load(gm_music.Path(gm_music.__file__).parents[1] / "configs" / "dataset" / "gm_music.yaml")
    ds = regs.dataset.build(cfg)
    assert isinstance(ds, gm_music.GMMusic) and ds.pieces == 24 and ds.seconds == 60.0 and ds.sr_render is None


def test_truncate_midi_cuts_by_the_tempo_map(tmp_path):
    """A 5 s piece at 120 bpm that turns to 60 bpm after 2 s (4 beats): cut at 3 s = tick 4·480 + 480;
    the note sounding across the cut ends there, later notes are gone."""
    import mido

    from melforge.datasets.fluidsynth import truncate_midi

    track = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500_000, time=0),
        mido.Message("note_on", note=60, velocity=90, time=0),
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=1920),  # beat 4 = 2 s
        mido.Message("note_off", note=60, time=960),  # beat 6 = 4 s
        mido.Message("note_on", note=64, velocity=90, time=0),
        mido.Message("note_off", note=64, time=480),
    ])  # fmt: skip
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(tmp_path / "in.mid"))
    truncate_midi(tmp_path / "in.mid", tmp_path / "out.mid", 3.0)
    out = mido.MidiFile(str(tmp_path / "out.mid"))
    assert out.length == pytest.approx(3.0)
    notes = [(m.type, m.note) for m in out.tracks[0] if m.type in ("note_on", "note_off")]
    assert notes == [("note_on", 60), ("note_off", 60)]
    truncate_midi(tmp_path / "in.mid", tmp_path / "all.mid", 100.0)  # longer than the piece: unchanged length
    assert mido.MidiFile(str(tmp_path / "all.mid")).length == pytest.approx(5.0)


def test_transpositions_shift_the_rendered_pitch(monkeypatch, tmp_path):
    """``transpositions=(-12,)`` renders the same score an octave down: the time-averaged
    constant-Q spectrum (semitone bins) of the transposed render matches the original's best at a
    shift of 12 semitones; ids, cache files and fingerprints say the shift."""
    import librosa

    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    plain = gm_music.GMMusic(pieces=1, seconds=4.0)
    down = gm_music.GMMusic(pieces=1, seconds=4.0, transpositions=(-12,))
    (a,), (b,) = list(plain.clips(22050)), list(down.clips(22050))
    assert b.id == "gm/bach/bwv127.5~-12@piano" and a.id == "gm/bach/bwv127.5@piano"
    assert (tmp_path / "gm_music" / "v1-sr22050" / "bach__bwv127.5~-12.p0.s4.wav").is_file()
    assert plain.fingerprint() != down.fingerprint()
    profile = [np.log(np.abs(librosa.cqt(c.audio, sr=22050, fmin=32.7, n_bins=84)).mean(axis=1) + 1e-6) for c in (a, b)]
    shifts = range(-24, 25)
    score = [np.corrcoef(profile[0][24:60], profile[1][24 - s : 60 - s])[0, 1] for s in shifts]
    assert list(shifts)[int(np.argmax(score))] == 12
    with pytest.raises(ValueError, match="transpositions"):
        gm_music.GMMusic(transpositions=())


def test_programs_and_soundfonts_cycle_and_render(monkeypatch, tmp_path):
    """``programs`` and ``soundfonts`` (gm_music_mixed): the i-th candidate plays
    programs[i % P] on soundfonts[(i // P) % S], so every soundfont plays every program; ids,
    cache files and fingerprints name a soundfont other than FluidR3, which renders differently."""
    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    ds = gm_music.GMMusic(pieces=8, seconds=2.0, programs=(0, 40), soundfonts=("fluidr3", "opl3"))
    names = ds.names()
    assert names == gm_music.GMMusic(pieces=8).names()  # the same pieces, whatever the sounds
    assert [ds.program(n) for n in names] == [0, 40] * 4
    assert [ds.soundfont(n) for n in names] == ["fluidr3"] * 2 + ["opl3"] * 2 + ["fluidr3"] * 2 + ["opl3"] * 2
    assert ds.clip_id(names[1]).endswith("@violin") and "+" not in ds.clip_id(names[1])
    assert ds.clip_id(names[2]) == f"gm/{gm_music.Path(names[2]).with_suffix('').as_posix()}+opl3@piano"
    # FluidR3 pieces keep gm_music's ids, cache files and fingerprint
    plain = gm_music.GMMusic(pieces=1, seconds=2.0)
    assert ds.cache_file(names[0], 22050) == plain.cache_file(names[0], 22050)
    assert gm_music.GMMusic(pieces=1, seconds=2.0, soundfonts=("fluidr3", "opl3")).fingerprint() == plain.fingerprint()
    assert ds.fingerprint() != gm_music.GMMusic(pieces=8, seconds=2.0, programs=(0, 40)).fingerprint()
    assert ds.cache_file(names[2], 22050).name.endswith(".p0.opl3.s2.wav")

    fm = gm_music.GMMusic(pieces=1, seconds=2.0, soundfonts=("opl3",))
    (a,), (b,) = list(plain.clips(22050)), list(fm.clips(22050))
    assert a.id != b.id and a.speaker == b.speaker == "piano" and b.audio.shape == a.audio.shape
    assert np.sqrt(np.mean(b.audio**2)) > 0.01
    assert abs(np.corrcoef(a.audio, b.audio)[0, 1]) < 0.5  # another instrument's sound, not a copy

    with pytest.raises(ValueError, match="soundfonts"):
        gm_music.GMMusic(soundfonts=("nosuch",))
    with pytest.raises(ValueError, match="programs"):
        gm_music.GMMusic(programs=(128,))
