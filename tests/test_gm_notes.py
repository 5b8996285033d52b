"""gm_notes: seeded single notes of General-MIDI programs on FluidR3_GM, one clip per note at the
pitch its id names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest

from melforge.datasets.gm_notes import PROGRAMS, VELOCITIES, GMNotes


def test_the_score_is_seeded_per_program_and_inside_the_pitch_range():
    notes = GMNotes(notes=50, lowest=40, highest=60, seed=3)
    pitches, velocities = notes.score(0)
    again, _ = GMNotes(notes=50, lowest=40, highest=60, seed=3).score(0)
    np.testing.assert_array_equal(pitches, again)
    assert pitches.min() >= 40 and pitches.max() <= 60 and set(velocities.tolist()) <= set(VELOCITIES)
    assert not np.array_equal(pitches, notes.score(40)[0])  # another program plays other notes
    assert notes.fingerprint() != GMNotes(notes=50, lowest=40, highest=60, seed=4).fingerprint()


@pytest.mark.parametrize("kwargs, message", [({"programs": [1]}, "unknown programs"), ({"notes": 0}, "notes >= 1"),
                                             ({"lowest": 90, "highest": 80}, "lowest <= highest")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GMNotes(**kwargs)


def test_each_clip_sounds_the_pitch_its_id_names(tmp_path, monkeypatch):
    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path))
    sr = 22050
    clips = list(GMNotes(programs=[73, 40], notes=3, seconds=0.5, release=0.1, lowest=60, highest=72).clips(sr))
    assert [c.speaker for c in clips] == [PROGRAMS[73]] * 3 + [PROGRAMS[40]] * 3
    for clip in clips:
        assert clip.audio.shape == (int(round(0.6 * sr)),) and clip.audio.dtype == np.float32
        midi = int(clip.id.rsplit("-", 1)[1])
        f0 = librosa.yin(clip.audio[: int(0.5 * sr)], fmin=100, fmax=1200, sr=sr, frame_length=2048)
        assert abs(librosa.hz_to_midi(np.median(f0)) - midi) < 0.5, clip.id
    assert len(list(tmp_path.rglob("*.npy"))) == 2  # one cached render per program


def test_the_music_ddsp_twin_trains_on_gm_notes_through_melforge_train(tmp_path):
    # the README's `melforge-train experiment=ddsp_music_tiny threads=1`, with tiny overrides
    args = ["experiment=ddsp_music_tiny", "threads=1", "dataset.programs=[73]", "dataset.notes=6", "inverter.hidden=16",
            "inverter.mlp_layers=1", "inverter.harmonics=16", "inverter.estimator_channels=8", "inverter.estimator_layers=2",
            "data.crop_frames=8", "data.valid_crops=2", "data.valid_fraction=0.3", "train.batch_size=2",
            "train.max_steps=2", "train.valid_every=2", "train.checkpoint_every=2", "hydra.run.dir=run"]
    proc = subprocess.run([sys.executable, "-m", "melforge.core.cli.train", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, MELFORGE_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "run/metrics.json").read_text())["steps"] == 2
    assert (tmp_path / "run/checkpoints/last.pt").is_file()
