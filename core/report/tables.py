"""The report's table (:mod:`melforge.core.report`): raw rows, CSV and Markdown."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, atomic_write
from .jobs import DONE, FAILED, RUNNING, Job

def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def monitor_of(jobs: list[Job]) -> tuple[str, str, str]:
    """``(figure, label, units)`` the table shows: the jobs' monitored figure (a model's ``nll``, a
    vocoder's ``loss``; the first job's when a directory mixes them)."""
    first = jobs[0] if jobs else Job(name="", path=Path("."))
    return first.monitor, first.monitor_label, first.units


def table_rows(jobs: list[Job], root: Path) -> tuple[list[str], list[list[Any]]]:
    """The report's table: headers and one row of raw values per job. The figure columns are
    named after the jobs' monitored figure: ``valid_nll`` … for models, ``valid_loss`` … for vocoders."""
    mon = monitor_of(jobs)[0]
    tiers = max((j.tiers for j in jobs), default=1)
    headers = ["job", "overrides", "all_overrides", "status", "reason", f"valid_{mon}", f"best_valid_{mon}", "best_valid_step"]
    if tiers > 1:
        for g in range(1, tiers + 1):
            headers += [f"valid_{mon}_tier{g}", f"best_valid_{mon}_tier{g}"]
    headers += [f"train_{mon}", "steps", "wall_seconds", "parameters", "sample_seconds", "sample_elements_per_second",
                "sample_png", "sample_wav", "sample_npy"]
    rows = []
    for j in jobs:
        row: list[Any] = [j.name, j.label, " ".join(j.overrides), j.status, j.reason, j.valid, j.best_valid,
                          j.best_valid_step]
        if tiers > 1:
            for g in range(1, tiers + 1):
                row += [j.tier_valid.get(g), j.tier_best_valid.get(g)]
        row += [j.train, j.steps, j.wall_seconds, j.parameters, j.sample_seconds, j.sample_elements_per_second,
                _rel(j.sample_png, root), _rel(j.sample_wav, root), _rel(j.sample_npy, root)]
        rows.append(row)
    return headers, rows


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> None:
    """The table as CSV: numbers at full precision, empty cells for unknown values."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # a full disk is named (core.atomic)
        w = csv.writer(f)
        w.writerow(headers)
        for row in rows:
            w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])


#: Columns of the Markdown and HTML tables (``all_overrides``, ``reason`` and the raw paths go
#: elsewhere: the common overrides above the table, reasons under it).
_SHOWN = {
    "job": "job", "overrides": "overrides", "status": "status", "best_valid_step": "at step", "steps": "steps",
    "wall_seconds": "wall s", "parameters": "parameters", "sample_seconds": "sample s",
    "sample_elements_per_second": "sample elements/s", "sample_wav": "sample",
}


def _shown(headers: list[str], label: str = "NLL") -> list[tuple[int, str]]:
    """The shown columns ``(index, title)``; the figure columns titled with ``label`` (``valid NLL``)."""
    out = []
    for i, h in enumerate(headers):
        if h in _SHOWN:
            out.append((i, _SHOWN[h]))
        elif m := re.fullmatch(r"(best_)?(valid|train)_[a-z0-9_]+?(?:_tier(\d+))?", h):
            best, split, tier = m.groups()
            out.append((i, f"{'best ' if best else ''}{split} {label}" + (f" tier {tier}" if tier else "")))
    return out


def _short_job(name: str, width: int = 40) -> str:
    """A sweep job's directory for the tables: Hydra's ``<num>_<every override>`` names run long;
    past ``width`` characters, ``<num>_…`` (the overrides column says the rest; the CSV keeps it whole)."""
    m = re.match(r"(\d+)_", name)
    return f"{m.group(1)}_…" if m and len(name) > width else name


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(path: Path, root: Path, jobs: list[Job], common: list[str], headers: list[str], rows: list[list[Any]]) -> None:
    _, label, units = monitor_of(jobs)
    cols = _shown(headers, label)
    lines = [f"# melforge report: {root.resolve().name}", ""]
    lines.append(f"{len(jobs)} job(s): " + ", ".join(f"{sum(j.status == s for j in jobs)} {s}" for s in (DONE, RUNNING, FAILED)) + ".")
    if common:
        lines.append(f"Overrides common to every job: `{' '.join(common)}`.")
    per = " (the whole spectrogram; per tier where the model has tiers)" if label == "NLL" else ""
    lines += [f"{label} in {units or 'the learner’s units'}{per}; best: the lowest validation {label} in "
              "TensorBoard, at its step.", ""]
    lines.append("| " + " | ".join(name for _, name in cols) + " |")
    lines.append("|" + "|".join(" --- " for _ in cols) + "|")
    for row in rows:
        cells = []
        for i, _ in cols:
            text = _md_cell(_fmt(row[i]))
            if headers[i] == "job":
                text = _short_job(text)
            elif headers[i] == "sample_wav" and text:
                text = f"[wav](<{text}>)"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    notes = [(j, j.reason) for j in jobs if j.reason] + [(j, n) for j in jobs for n in j.notes]
    if notes:
        lines += ["Notes:", ""] + [f"- `{j.name}`: {_md_cell(text)}" for j, text in notes] + [""]
    lines += [f"![training and validation {label}](curves.png)", "", "![first sample of every job](samples.png)", ""]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines)))
