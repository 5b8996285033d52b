"""A listening set: the same clips through several vocoders, stored as WAVs and a manifest, for
``melforge-report`` to render as a listening page (:mod:`melforge.core.report.listening`).

``benchmarks/vocoders.py --listen DIR`` writes one with :func:`write_listening_set`; anything
else may too. A folder holding a set looks like::

    DIR/listening.json                  # the manifest, written last
    DIR/00_<clip>/reference.wav         # only when the clip has a reference
    DIR/00_<clip>/00_<row label>.wav    # one per row, in the clip's order
    DIR/01_<clip>/...

The manifest (``listening.json``, :data:`VERSION` 1); every path is relative to its folder::

    {"format": "melforge listening set", "version": 1, "sr": 22050,
     "clips": [{"name": "it_0001", "note": "held-out speaker it",
                "reference": "00_it_0001/reference.wav",             # or null: a generated sample
                "rows": [{"label": "griffin-lim 500", "wav": "00_it_0001/00_griffin-lim_500.wav"},
                         ...]},
               ...]}

WAVs are mono 16-bit PCM at ``sr`` Hz. Every WAV is written atomically and the manifest after
them, so a reader never sees a manifest naming a WAV not yet written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf

from .atomic import atomic_write
from .audio_io import write_wav
from .validation import check_audio

#: The manifest's file name; ``melforge-report`` looks for it below its directory.
MANIFEST = "listening.json"
#: The manifest's ``format`` and ``version`` fields.
FORMAT = "melforge listening set"
VERSION = 1
#: The file name of a clip's reference audio, inside the clip's folder.
REFERENCE = "reference.wav"


class ListeningSetError(ValueError):
    """A listening set that cannot be written or read; the message names the clip, the row or
    the file at fault."""


@dataclass(frozen=True)
class ListeningClip:
    """One clip of a listening set, as given to :func:`write_listening_set`.

    Attributes:
        name: what the clip is (``"it_0001"``, ``"MelNet sample 0"``); unique within a set.
        note: one line shown with each of its cards (``"held-out speaker it"``, ``"MelNet sample"``).
        reference: the original audio ``(samples,)`` in [-1, 1], or ``None`` (a generated
            sample has no original).
        rows: row label (a vocoder: ``"griffin-lim 500"``) → its audio ``(samples,)``, in the
            order the page shows them.
    """

    name: str
    note: str
    reference: np.ndarray | None
    rows: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredClip:
    """One clip of a set read back by :func:`read_listening_set`: its WAVs' paths (absolute,
    each checked to exist and to be audio at the set's ``sr``)."""

    name: str
    note: str
    reference: Path | None
    rows: list[tuple[str, Path]]  # (row label, WAV), in the manifest's order


@dataclass(frozen=True)
class ListeningSet:
    """A listening set read back: its manifest's path, sample rate (Hz) and clips."""

    manifest: Path
    sr: int
    clips: list[StoredClip]

    @property
    def folder(self) -> Path:
        return self.manifest.parent


def _slug(text: str) -> str:
    """``text`` as a file-name stem: letters, digits, ``.``, ``_``, ``-``; at most 40 characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "x"


def _checked_clips(sr: int, clips: Sequence[ListeningClip]) -> list[ListeningClip]:
    """The clips with every audio as float32 ``(samples,)``.

    Raises:
        ListeningSetError: ``sr`` not a positive integer; no clips; a name empty or repeated;
            a note not a string; a clip without rows (or rows not a mapping); a row label empty or not a string;
            audio not 1-D, empty or not finite (names the clip and row).
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ListeningSetError(f"listening set: sr must be a positive integer (Hz), got {sr!r}")
    if not clips:
        raise ListeningSetError("listening set: no clips given")
    out, names = [], set()
    for k, clip in enumerate(clips):
        if not isinstance(clip.name, str) or not clip.name.strip():
            raise ListeningSetError(f"listening set: clip {k} has an empty name ({clip.name!r})")
        if clip.name in names:
            raise ListeningSetError(f"listening set: two clips are named {clip.name!r}")
        names.add(clip.name)
        if not isinstance(clip.note, str):
            raise ListeningSetError(f"listening set: clip {clip.name!r}: note must be a string, got {clip.note!r}")
        if not isinstance(clip.rows, Mapping) or not clip.rows:
            raise ListeningSetError(f"listening set: clip {clip.name!r} has no rows (a mapping label → audio)")
        rows = {}
        for label, audio in clip.rows.items():
            if not isinstance(label, str) or not label.strip():
                raise ListeningSetError(f"listening set: clip {clip.name!r} has an empty row label ({label!r})")
            rows[label] = _checked_audio(audio, f"listening set: clip {clip.name!r}, row {label!r}")
        reference = None if clip.reference is None else _checked_audio(
            clip.reference, f"listening set: clip {clip.name!r}, reference")
        out.append(ListeningClip(clip.name, clip.note, reference, rows))
    return out


def _checked_audio(audio: Any, what: str) -> np.ndarray:
    try:
        return check_audio(audio, what)
    except ValueError as exc:
        raise ListeningSetError(str(exc)) from None


def write_listening_set(folder: str | os.PathLike, sr: int, clips: Sequence[ListeningClip]) -> Path:
    """Write ``clips`` as WAVs (mono 16-bit PCM at ``sr`` Hz) and their manifest
    :data:`MANIFEST` into ``folder`` (created if need be), the manifest last; every file atomically.

    Keep clips short: the listening page embeds every WAV (see
    :mod:`melforge.core.report.listening` for the page's size). Audio with peaks above 1 is scaled
    down to a peak of 0.99 rather than clipped (:func:`~melforge.core.audio_io.write_wav`). WAVs of
    an earlier set in the same folder under other names are left where they are; the manifest
    names the current ones.

    Args:
        folder: the set's folder.
        sr: the sample rate of every clip and row (Hz).
        clips: the clips, in page order (see :class:`ListeningClip`).

    Returns:
        The manifest's path.

    Raises:
        ListeningSetError: invalid input (see :func:`_checked_clips`); nothing is written then.
        OSError: a write failed (:class:`~melforge.core.atomic.DiskFullError` on a full disk).
    """
    folder = Path(folder)
    clips = _checked_clips(sr, clips)
    entries = []
    for k, clip in enumerate(clips):
        sub = f"{k:02d}_{_slug(clip.name)}"
        reference = None
        if clip.reference is not None:
            reference = f"{sub}/{REFERENCE}"
            write_wav(folder / reference, clip.reference, int(sr))
        rows = []
        for j, (label, audio) in enumerate(clip.rows.items()):
            wav = f"{sub}/{j:02d}_{_slug(label)}.wav"
            write_wav(folder / wav, audio, int(sr))
            rows.append({"label": label, "wav": wav})
        entries.append({"name": clip.name, "note": clip.note, "reference": reference, "rows": rows})
    manifest = {"format": FORMAT, "version": VERSION, "sr": int(sr), "clips": entries}
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    return atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def find_listening_sets(root: str | os.PathLike) -> list[Path]:
    """Every :data:`MANIFEST` at or below ``root`` (hidden folders skipped), sorted by path;
    ``[]`` when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = (p for p in root.rglob(MANIFEST) if p.is_file())
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))


def read_listening_set(manifest: str | os.PathLike) -> ListeningSet:
    """Read a set's manifest and check that every WAV it names exists and is audio at its ``sr``.

    Raises:
        ListeningSetError: no such manifest; not valid JSON; not a listening set (format,
            version, fields); a WAV path absolute or outside the set's folder; a WAV missing,
            unreadable or at another sample rate (each message names the manifest and the file).
    """
    manifest = Path(manifest)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ListeningSetError(f"{manifest}: no such listening set manifest") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ListeningSetError(f"{manifest}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ListeningSetError(f"{manifest}: not a listening set manifest (its \"format\" is not {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ListeningSetError(f"{manifest}: listening set version {data.get('version')!r}; this melforge reads {VERSION}")
    sr = data.get("sr")
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        raise ListeningSetError(f"{manifest}: \"sr\" must be a positive integer (Hz), got {sr!r}")
    clips = data.get("clips")
    if not isinstance(clips, list) or not clips:
        raise ListeningSetError(f"{manifest}: \"clips\" must be a non-empty list")
    return ListeningSet(manifest, sr, [_stored_clip(entry, k, manifest, sr) for k, entry in enumerate(clips)])


def _stored_clip(entry: Any, k: int, manifest: Path, sr: int) -> StoredClip:
    """Clip ``k`` of ``manifest``, its WAVs checked (see :func:`read_listening_set`)."""
    if not isinstance(entry, dict):
        raise ListeningSetError(f"{manifest}: clip {k} is not an object")
    name, note, rows = entry.get("name"), entry.get("note", ""), entry.get("rows")
    if not isinstance(name, str) or not name or not isinstance(note, str):
        raise ListeningSetError(f"{manifest}: clip {k} needs a non-empty \"name\" and a string \"note\"")
    if not isinstance(rows, list) or not rows:
        raise ListeningSetError(f"{manifest}: clip {name!r} needs a non-empty \"rows\" list")
    stored = []
    for row in rows:
        label = row.get("label") if isinstance(row, dict) else None
        if not isinstance(label, str) or not label:
            raise ListeningSetError(f"{manifest}: clip {name!r} has a row without a \"label\": {row!r}")
        stored.append((label, _wav(row.get("wav"), f"clip {name!r}, row {label!r}", manifest, sr)))
    reference = entry.get("reference")
    if reference is not None:
        reference = _wav(reference, f"clip {name!r}, reference", manifest, sr)
    return StoredClip(name, note, reference, stored)


def _wav(rel: Any, what: str, manifest: Path, sr: int) -> Path:
    """The WAV ``rel`` (relative to the manifest's folder), checked to be inside that folder, to
    exist and to be audio at ``sr`` Hz."""
    if not isinstance(rel, str) or not rel or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
        raise ListeningSetError(f"{manifest}: {what}: \"wav\" must be a path inside the set's folder, got {rel!r}")
    path = manifest.parent / rel
    if not path.is_file():
        raise ListeningSetError(f"{manifest}: {what}: missing WAV {path}")
    try:
        info = sf.info(str(path))
    except RuntimeError as exc:  # soundfile's error for unreadable files
        raise ListeningSetError(f"{manifest}: {what}: cannot read {path} as audio ({exc})") from None
    if info.samplerate != sr:
        raise ListeningSetError(f"{manifest}: {what}: {path} is at {info.samplerate} Hz, the set at {sr} Hz")
    return path
