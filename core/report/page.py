"""The report's self-contained HTML page (:mod:`melforge.core.report`): the table with each
job's spectrogram and audio player, every image and sound embedded."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .jobs import DONE, FAILED, RUNNING, Job
from .plots import sample_png_bytes
from .tables import _fmt, _rel, _short_job, _shown, monitor_of


def data_uri(mime: str, data: bytes) -> str:
    """``data`` as a base64 ``data:`` URI of type ``mime`` (``"audio/wav"``, ``"image/png"``): an
    embedded resource, so the page needs no file beside it (base64 makes it 4/3 the bytes)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff0f0; }
tr.running td { background: #fffbe6; }
img.figure { max-width: 100%; }
div.table { max-width: 100%; overflow-x: auto; }
td.sample img { display: block; max-width: 480px; }
td.sample audio { display: block; width: 100%; min-width: 240px; margin-top: 4px; }
.small { font-size: 11px; color: #666; }
"""


def _html_cell(header: str, value: Any, job: Job) -> str:
    """One table cell of ``job``'s row for column ``header``."""
    e = html.escape
    text = e(_fmt(value))
    if header == "status" and job.reason:
        text += f"<div class=\"small\">{e(job.reason)}</div>"
    if header == "overrides":
        text = f"<code>{text}</code>"
    if header == "job":
        text = f"<span title=\"{text}\">{e(_short_job(job.name))}</span>"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<td class=\"num\">{text}</td>" if numeric else f"<td>{text}</td>"


def _sample_cell(job: Job, root: Path, scale: tuple[float, float] | None) -> str:
    """``job``'s spectrogram with its audio player right below it, both embedded."""
    e = html.escape
    png = sample_png_bytes(job, scale)
    parts = [f"<img alt=\"sample of {e(job.name)}\" src=\"{data_uri('image/png', png)}\">" if png else "no sample"]
    if job.sample_wav is not None:
        parts.append(f"<audio controls preload=\"metadata\" src=\"{data_uri('audio/wav', job.sample_wav.read_bytes())}\"></audio>"
                     f"<div class=\"small\">{e(_rel(job.sample_wav, root))}</div>")
    else:
        parts.append("<div class=\"small\">no audio</div>")
    return "<td class=\"sample\">" + "".join(parts) + "</td>"


def write_html(path: Path, root: Path, jobs: list[Job], common: list[str], headers: list[str], rows: list[list[Any]],
               scales: dict[str, tuple[float, float]], figures: dict[str, Path], links: dict[str, str] | None = None) -> None:
    """The table with each job's spectrogram and an audio player, every image and sound
    embedded (base64 data URIs): one file that opens from disk. ``links``: ``{text: href}`` of
    sibling pages (the listening page), linked under the title."""
    e = html.escape
    _, label, units = monitor_of(jobs)
    cols = [(i, name) for i, name in _shown(headers, label) if headers[i] != "sample_wav"]
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>melforge report: {e(root.resolve().name)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>melforge report: {e(root.resolve().name)}</h1>"]
    counts = ", ".join(f"{sum(j.status == s for j in jobs)} {s}" for s in (DONE, RUNNING, FAILED))
    out.append(f"<p>{len(jobs)} job(s): {counts}. {e(label)} in {e(units or 'the learner’s units')}.</p>")
    for text, href in (links or {}).items():
        out.append(f"<p><a href=\"{e(href)}\">{e(text)}</a></p>")
    if common:
        out.append(f"<p>Overrides common to every job: <code>{e(' '.join(common))}</code></p>")
    # Each job's spectrogram and audio player share one cell, right after the job's name, so the
    # player stays beside its spectrogram and on screen however many columns the table has; the
    # table scrolls inside its own box rather than widening the page.
    head = [f"<th>{e(name)}</th>" for _, name in cols]
    out.append("<div class=\"table\"><table><tr>" + "".join(head[:1]) + "<th>sample (listen below)</th>"
               + "".join(head[1:]) + "</tr>")
    for j, row in zip(jobs, rows):
        cells = [_html_cell(headers[i], row[i], j) for i, _ in cols]
        cells.insert(1, _sample_cell(j, root, scales.get(j.sample_kind)))
        out.append(f"<tr class=\"{e(j.status)}\">" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    notes = [(j, n) for j in jobs for n in j.notes]
    if notes:
        out.append("<ul>" + "".join(f"<li><code>{e(j.name)}</code>: {e(n)}</li>" for j, n in notes) + "</ul>")
    for title, fig in figures.items():
        if fig.is_file():
            out.append(f"<h2>{e(title)}</h2><img class=\"figure\" alt=\"{e(title)}\" src=\"{data_uri('image/png', fig.read_bytes())}\">")
    out.append("</body></html>")
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(out) + "\n"))
