"""The splits of the vocoder benchmark (``benchmarks/vocoders.py``): what is scored, and what only
chooses.

Two domains, each at the mel geometry of its vocoder twins:

- **speech** (16 kHz, n_fft 1024, hop 256, 64 mels up to 8 kHz; the MelNet speech twins'):
  - ``test``: prompts of the Italian Asterisk voice (``it``), a speaker that no vocoder twin
    trains on (``hifigan_tiny``, ``istftnet_tiny``, ``melgan_tiny``, ``ddsp_tiny``,
    ``nsf_tiny`` train on ``en``, ``fr``, ``ru``);
  - ``dev``: prompts of the training speakers that fall in the twins' validation split
    (``in_valid_split(id, 0.05)``, never trained on), for every choice (checkpoints, the best GAN
    twin).
- **music** (22,050 Hz, n_fft 1024, hop 256, 80 mels up to 11,025 Hz; ``pg_vocoder_tiny``'s):
  - ``test``: seed 002's N+C notes and chords (§4.2) rendered with TimGM6mb, a soundfont that no
    training data uses (every twin's music, ``gm_music``, is rendered with FluidR3_GM);
  - ``dev``: the same N+C items rendered with FluidR3_GM, the training soundfont (in-domain; never
    scored).

Clips are at least 2 s of speech (cut to ``max_seconds``) and the N+C items 1.5 s; each is chosen
deterministically (sorted by id, every k-th).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from melforge.core.features import in_valid_split
from melforge.datasets.asterisk import AsteriskPrompts
from melforge.datasets.notes_chords import CHORDS, notes_chords

#: The speech twins' analysis (speech_tiny's MelNet geometry), as a ``log_mel`` config.
SPEECH_MEL = {"name": "log_mel", "sr": 16000, "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 64,
              "fmin": 0.0, "fmax": 8000.0, "floor": 1.0e-5}
#: The music twins' analysis (pg_vocoder_tiny's geometry).
MUSIC_MEL = {"name": "log_mel", "sr": 22050, "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 80,
             "fmin": 0.0, "fmax": 11025.0, "floor": 1.0e-5}
DOMAINS = {"speech": SPEECH_MEL, "music": MUSIC_MEL}
#: The held-out speaker and soundfont, and the training ones.
TEST_SPEAKER, TRAIN_SPEAKERS = "it", ("en", "fr", "ru")
TEST_SOUNDFONT, TRAIN_SOUNDFONT = "timgm6mb", "fluidr3"
#: Soundfonts no training data may use besides the test one: Debian's csound-soundfont
#: (sf_GMbank.sf2) shares TimGM6mb's piano, Rhodes, organ and guitar samples
#: (tests/test_vocoder_splits.py measures it).
TEST_SOUNDFONT_COPIES = ("csound",)


@dataclass
class Item:
    """One clip of a split.

    Attributes:
        id: the clip id (speech: the prompt's id; music: ``instrument/chord/root``).
        audio: ``(samples,)`` float32 at ``sr`` Hz.
        sr: Hz.
        subset: ``speech`` or seed 002's ``notes`` / ``chords`` / ``octaves``.
        f0s_hz: the nominal fundamentals of a music item (H_err's partials), empty for speech.
    """

    id: str
    audio: np.ndarray = field(repr=False)
    sr: int
    subset: str
    f0s_hz: tuple[float, ...] = ()


def speech_items(split: str, count: int, max_seconds: float = 4.0) -> list[Item]:
    """``count`` prompts of ``split`` (``dev`` or ``test``, see the module docstring), every k-th
    by id so that the whole speaker is sampled, each cut to ``max_seconds``.

    Raises:
        ValueError: an unknown split, or fewer than ``count`` clips of at least 2 s.
    """
    sr = SPEECH_MEL["sr"]
    if split == "test":
        clips = list(AsteriskPrompts(languages=[TEST_SPEAKER]).clips(sr))
    elif split == "dev":
        clips = [c for c in AsteriskPrompts(languages=list(TRAIN_SPEAKERS)).clips(sr) if in_valid_split(c.id, 0.05)]
    else:
        raise ValueError(f"speech split must be 'dev' or 'test', got {split!r}")
    long = sorted((c for c in clips if len(c.audio) >= 2 * sr), key=lambda c: c.id)
    if len(long) < count:
        raise ValueError(f"speech {split}: asked for {count} clips of at least 2 s, found {len(long)}")
    step = len(long) // count
    return [Item(c.id, np.asarray(c.audio[: int(max_seconds * sr)], dtype=np.float32), sr, "speech")
            for c in long[::step][:count]]


def music_items(split: str, note_step: int, chord_step: int) -> list[Item]:
    """The N+C items of ``split`` (``dev``: FluidR3_GM; ``test``: TimGM6mb): every
    ``note_step``-th single note from C2 and every ``chord_step``-th root of the chords and octaves.

    Raises:
        ValueError: an unknown split.
        DatasetError: FluidSynth or a soundfont is missing and cannot be installed.
    """
    if split not in ("dev", "test"):
        raise ValueError(f"music split must be 'dev' or 'test', got {split!r}")
    soundfont = TEST_SOUNDFONT if split == "test" else TRAIN_SOUNDFONT
    sr = MUSIC_MEL["sr"]
    nc = notes_chords(sr, chords=["note"], root_step=note_step, soundfont=soundfont)
    nc += notes_chords(sr, chords=[c for c in CHORDS if c != "note"], root_step=chord_step, soundfont=soundfont)
    return [Item(i.id, i.audio, sr, i.subset, tuple(i.f0s_hz)) for i in nc]
