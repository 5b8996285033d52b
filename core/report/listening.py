"""The report's listening page (:mod:`melforge.core.report`): every listening set below the
report's directory (:mod:`melforge.core.listening_set`, ``listening.json``) as one
self-contained ``listening.html``.

Each clip is a section; its cards sit side by side (wrapping onto more lines when the window is
narrow), the reference first (when the clip has one), then every row (vocoder) in the set's order. A card holds the row label, a log-mel
spectrogram of its WAV (:func:`~melforge.core.report.jobs.wav_log_mel`, nats) on one colour scale
shared by the clip's cards so that they compare, an ``<audio controls>`` player and the clip's
note. Images and sounds are embedded as ``data:`` URIs; the page links nothing.

Size: every card embeds its 16-bit WAV in base64, ``sr × 8/3`` bytes per second of audio
(58.8 kB/s at 22,050 Hz), plus its spectrogram PNG. Eight clips of 3 s through ten vocoders
at 22,050 Hz embed 80 × 3 × 58.8 kB ≈ 14 MB of audio: keep clips to a few seconds.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..atomic import atomic_write
from ..listening_set import ListeningSet, StoredClip
from .jobs import wav_log_mel
from .page import data_uri
from .plots import shared_scale, spectrogram_png_bytes

#: The page's file name, next to ``report.html``.
LISTENING_PAGE = "listening.html"

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
section.clip { margin: 0.8em 0 1.6em; }
section.clip h3 { margin: 0 0 0.3em; font-size: 15px; }
div.cards { display: flex; flex-wrap: wrap; gap: 10px; }
div.card { flex: 0 0 auto; width: 330px; border: 1px solid #ccc; padding: 6px; background: #fafafa; }
div.card.reference { background: #eef5ff; }
div.card img { display: block; width: 100%; }
div.card audio { display: block; width: 100%; margin-top: 4px; }
div.label { font-weight: bold; font-size: 13px; margin-bottom: 4px; }
.small { font-size: 11px; color: #666; }
"""


def _card(clip: StoredClip, label: str, wav: Path, png: bytes, css: str) -> str:
    """One card: ``label``, the spectrogram ``png``, a player of ``wav`` and the clip's note."""
    e = html.escape
    return (f"<div class=\"{css}\" data-label=\"{e(label)}\"><div class=\"label\">{e(label)}</div>"
            f"<img alt=\"log-mel spectrogram of {e(clip.name)}: {e(label)}\" src=\"{data_uri('image/png', png)}\">"
            f"<audio controls preload=\"metadata\" src=\"{data_uri('audio/wav', wav.read_bytes())}\"></audio>"
            f"<div class=\"small\">{e(clip.note)}</div></div>")


def _clip_section(clip: StoredClip) -> str:
    """A clip's heading and its cards, every spectrogram on the clip's shared colour scale."""
    e = html.escape
    cards = ([("reference", clip.reference, "card reference")] if clip.reference is not None else []) \
        + [(label, wav, "card") for label, wav in clip.rows]
    images = [wav_log_mel(wav) for _, wav, _ in cards]  # (frames, mels) each, log power in nats
    scale = shared_scale(images) or (0.0, 1.0)
    body = "".join(_card(clip, label, wav, spectrogram_png_bytes(image, scale), css)
                   for (label, wav, css), image in zip(cards, images))
    note = f" <span class=\"small\">{e(clip.note)}</span>" if clip.note else ""
    return (f"<section class=\"clip\" data-clip=\"{e(clip.name)}\"><h3>{e(clip.name)}{note}</h3>"
            f"<div class=\"cards\">{body}</div></section>")


def write_listening_page(path: Path, root: Path, sets: list[ListeningSet]) -> Path:
    """Write every set of ``sets`` (read from below ``root``) into one self-contained page at
    ``path``, a section per set in the given order; returns ``path``.

    Raises:
        OSError: a WAV could not be read or the page not written.
    """
    e = html.escape
    name = e(root.resolve().name)
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>melforge listening: {name}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>melforge listening: {name}</h1>",
           "<p>The same clips through every vocoder, side by side: the reference (when a clip has one) first. "
           "Spectrograms are log-mel power (nats) of each WAV, on one colour scale per clip.</p>"]
    for s in sets:
        where = s.folder.relative_to(root).as_posix() if s.folder.is_relative_to(root) else str(s.folder)
        players = sum(len(c.rows) + (c.reference is not None) for c in s.clips)
        out.append(f"<h2>{e(where)}</h2><p class=\"small\">{len(s.clips)} clip(s), {players} player(s), "
                   f"{s.sr} Hz; from <code>{e(s.manifest.name)}</code></p>")
        out.extend(_clip_section(c) for c in s.clips)
    out.append("</body></html>")
    return atomic_write(path, lambda tmp: tmp.write_text("\n".join(out) + "\n", encoding="utf-8"))
