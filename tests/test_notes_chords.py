"""The N+C evaluation set of seed 002 §4.2: item list, subsets and the pitches of the renders."""

from __future__ import annotations

import numpy as np
import pytest

from melforge.datasets import notes_chords as nc


def measured_f0(audio: np.ndarray, sr: int, nominal: float) -> float:
    """Frequency (Hz) of the largest spectral peak within ± half a semitone of ``nominal``, from
    the sustained part (0.2-1.0 s), Hann window, 2²⁰-point FFT and parabolic interpolation of the
    log magnitude (resolution 0.02 Hz at 22,050 Hz before interpolation)."""
    x = audio[int(0.2 * sr) : int(1.0 * sr)].astype(np.float64)
    n = 1 << 20
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n))  # (n/2 + 1,)
    lo, hi = np.searchsorted(np.arange(spec.size) * sr / n, [nominal * 2 ** (-0.5 / 12), nominal * 2 ** (0.5 / 12)])
    k = lo + int(np.argmax(spec[lo:hi]))
    a, b, c = np.log(spec[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n


def test_item_list_follows_section_4_2():
    items = nc.nc_items()
    per_chord = {c: sum(1 for i in items if i.chord == c and i.instrument == "rhodes") for c in nc.CHORDS}
    # roots from C2 (36) while the top note stays at or below C7 (96)
    assert per_chord == {"note": 61, "octave": 49, "major_12th": 42, "fifth": 54, "open_triad": 45,
                         "close_triad": 54, "major_seventh": 50}  # fmt: skip
    assert len(items) == 4 * sum(per_chord.values())
    assert {i.program for i in items} == {4, 19, 48, 24}
    by_id = {i.id: i for i in items}
    assert len(by_id) == len(items)
    a4 = by_id["nylon_guitar/note/A4"]
    assert a4.midi == (69,) and a4.hz == (440.0,) and a4.subset == "notes"
    triad = by_id["rhodes/open_triad/C3"]
    assert triad.midi == (48, 55, 64) and triad.subset == "chords"
    np.testing.assert_allclose(triad.hz, (130.8128, 195.9977, 329.6276), atol=1e-4)
    assert by_id["church_organ/octave/C4"].subset == "octaves"  # one pitch class: not in "Chords"
    assert by_id["church_organ/major_12th/C4"].subset == "chords"
    assert by_id["string_ensemble/major_seventh/C2"].midi == (36, 40, 43, 47)
    assert max(max(i.midi) for i in items) == 96 and min(min(i.midi) for i in items) == 36
    assert len(nc.subset(items, "notes")) == 4 * 61
    assert len(nc.subset(items, "chords")) == 4 * (42 + 54 + 45 + 54 + 50)
    assert len(nc.nc_items(["rhodes"], ["note"], root_step=12)) == 6  # C2 .. C7
    with pytest.raises(ValueError, match="unknown instrument 'piano'"):
        nc.nc_items(["piano"])
    with pytest.raises(ValueError, match="subset"):
        nc.subset(items, "Notes")


#: (id, measured deviation from equal temperament in cents at 22,050 Hz — the soundfont's tuning).
WELL_TUNED = [
    ("rhodes/note/F#2", 1.2), ("rhodes/note/C5", -0.6), ("rhodes/note/F#5", -0.4),
    ("nylon_guitar/note/C2", 0.8), ("nylon_guitar/note/F#4", 1.3), ("nylon_guitar/note/C7", -1.3),
]  # fmt: skip


def test_rendered_pitches_are_right(monkeypatch, tmp_path):
    """The f0 of rendered notes is within 5 cents of the item's ``hz`` on a few notes of the
    well-tuned sounds (FluidR3's organ samples measure 5-13 cents sharp and its string ensemble
    ±35 cents with its vibrato, so those are only checked to the semitone); a chord has a peak at
    each of its fundamentals; renders are cached."""
    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    sr = 22050
    wanted = {i for i, _ in WELL_TUNED} | {"church_organ/note/C4", "string_ensemble/note/C4", "rhodes/close_triad/C4"}
    specs = [i for i in nc.nc_items() if i.id in wanted]
    items = nc.render_items(specs, sr)
    assert len(items) == len(wanted)
    by_id = {i.id: i for i in items}
    for item in items:
        assert item.sr == sr and item.audio.dtype == np.float32
        assert item.audio.shape == (int((nc.NOTE_SECONDS + nc.RELEASE) * sr),)
        assert 0.01 < np.abs(item.audio).max() < 1.0
    for key, _ in WELL_TUNED:
        item = by_id[key]
        cents = 1200 * np.log2(measured_f0(item.audio, sr, item.hz[0]) / item.hz[0])
        assert abs(cents) <= 5.0, (key, cents)
    for key in ("church_organ/note/C4", "string_ensemble/note/C4"):
        item = by_id[key]
        assert abs(1200 * np.log2(measured_f0(item.audio, sr, item.hz[0]) / item.hz[0])) < 50
    triad = by_id["rhodes/close_triad/C4"]
    for hz in triad.hz:
        assert abs(1200 * np.log2(measured_f0(triad.audio, sr, hz) / hz)) <= 5.0, hz

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(nc, "render_note_sequence", no_render)
    again = nc.render_items(specs, sr)  # the same items: read from the cache
    for a, b in zip(again, items):
        assert a.id == b.id
        np.testing.assert_array_equal(a.audio, b.audio)


def test_harmonic_error_sum_and_per_partial_mean_are_both_labelled():
    """A tone shifted by one semitone: every partial is 1 semitone off, so the per-partial mean
    (``mean``) is 1 and the paper's sum over the five partials (``sum_mean``) is 5."""
    from melforge.core import metrics

    sr = 22050
    t = np.arange(sr) / sr

    def tone(f0):
        return sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6)).astype(np.float32)

    h = metrics.harmonic_error(tone(220.0), tone(220.0 * 2 ** (1 / 12)), sr, [220.0])
    assert h.mean == pytest.approx(1.0, abs=0.05) and h.sum_mean == pytest.approx(5.0, abs=0.25)
    assert h.sum_max >= h.sum_mean and h.partial_sum.shape == (1, h.per_partial.shape[2])
    np.testing.assert_allclose(h.partial_sum, np.nansum(h.per_partial, axis=1))
    # one partial unvoiced at a frame: the sum counts the others only
    per = np.ones((1, 5, 3))
    per[0, 4, 0] = np.nan
    per[0, :, 2] = np.nan
    e = metrics.HarmonicError(1.0, 1.0, per)
    np.testing.assert_array_equal(e.partial_sum, [[4.0, 5.0, np.nan]])
    assert e.sum_mean == 4.5 and e.sum_max == 5.0


def test_the_held_out_soundfont_renders_other_samples_at_the_same_pitch(monkeypatch, tmp_path):
    """N+C items rendered with TimGM6mb (the vocoder benchmark's test soundfont) are other sounds
    than FluidR3's (the training soundfont): low waveform and spectral correlation, while the
    pitch is the item's within half a semitone; they are cached apart from FluidR3's renders;
    an unknown soundfont is named."""
    import librosa

    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    sr = 22050
    specs = [i for i in nc.nc_items(chords=["note"]) if i.id in ("church_organ/note/C4", "nylon_guitar/note/C3")]
    held_out = nc.render_items(specs, sr, soundfont="timgm6mb")
    training = nc.render_items(specs, sr)
    for a, b in zip(held_out, training):
        assert a.id == b.id and a.audio.shape == b.audio.shape
        assert abs(np.corrcoef(a.audio, b.audio)[0, 1]) < 0.5, a.id
        spec_a, spec_b = (np.abs(librosa.stft(x)).ravel() for x in (a.audio, b.audio))
        assert np.corrcoef(spec_a, spec_b)[0, 1] < 0.9, a.id
        assert abs(1200 * np.log2(measured_f0(a.audio, sr, a.hz[0]) / a.hz[0])) < 50, a.id
    assert len(list(tmp_path.rglob("*.npy"))) == 4  # two instruments × two soundfonts
    with pytest.raises(ValueError, match="unknown soundfont 'nope'.*fluidr3"):
        nc.render_items(specs, sr, soundfont="nope")
