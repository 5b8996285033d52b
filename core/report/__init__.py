"""``melforge-report``: turn a run directory or a sweep directory into a table, curves, sample
spectrograms and a self-contained HTML page with audio players.

What is read, per job (a run directory):

- ``metrics.json`` (a finished run): its monitored figure (``monitor``: a model's NLL, a
  vocoder's loss) at the end, steps, wall time, the first sample's speed;
- ``tensorboard/`` event files: the ``train/<monitor>`` and ``valid/<monitor>`` (and
  ``valid/nll_tier<g>``) curves, the best validation value, and the latest values of runs
  without ``metrics.json``;
- ``checkpoints/last.pt`` (read with :func:`~melforge.core.checkpoint.load_checkpoint`, no code
  run): the number of parameters, and the step of an unfinished run;
- ``samples/sample_000.{npy,wav,png}``; ``.hydra/overrides.yaml`` (else the keys of
  ``config.yaml`` that differ between the jobs); ``*.log`` (the last line of a failed run);
- ``.melforge.lock``: a run without ``metrics.json`` whose lock is held by a live process is
  *running*; otherwise it *failed*.

Nothing a job lacks (a failed or running job, an empty event file, NaN metrics) stops the
report: the value is left empty and the job's status says why.

Every listening set at or below the directory (``listening.json``, written by
:func:`~melforge.core.listening_set.write_listening_set`: the same clips through several
vocoders) becomes ``listening.html`` (:mod:`melforge.core.report.listening`), linked from
``report.html``. A directory holding listening sets and no run gets the listening page alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_path
from ..listening_set import MANIFEST, ListeningSet, find_listening_sets, read_listening_set
from .jobs import OUTPUTS, Curve, Job, NoRunsFound, collect, find_jobs, read_job
from .listening import LISTENING_PAGE, write_listening_page
from .page import write_html
from .plots import colour_scales, plot_curves, plot_samples
from .tables import monitor_of, table_rows, write_csv, write_markdown

__all__ = ["LISTENING_PAGE", "OUTPUTS", "Curve", "Job", "NoRunsFound", "collect", "find_jobs", "read_job", "write_report"]


def write_report(root: str | os.PathLike) -> tuple[list[Job], dict[str, Path]]:
    """Read the run or sweep directory ``root`` and write ``report.md``, ``report.csv``,
    ``curves.png``, ``samples.png`` and ``report.html`` into it; and ``listening.html`` when
    listening sets lie at or below it (with no run, only that).

    Returns:
        The jobs read (``[]`` for listening sets alone), and ``{output name: path}``.

    Raises:
        NoRunsFound: ``root`` holds neither a run nor a listening set.
        ~melforge.core.listening_set.ListeningSetError: a listening set's manifest is unreadable or names a missing or
            unreadable WAV (names the file); nothing is written then.
    """
    root = Path(root)
    sets = [read_listening_set(m) for m in find_listening_sets(root)]
    jobs, common = _collect(root, sets)
    paths = _write_runs(root, jobs, common, {"listening page": LISTENING_PAGE} if sets else {}) if jobs else {}
    if sets:
        paths[LISTENING_PAGE] = write_listening_page(root / LISTENING_PAGE, root, sets)
    return jobs, paths


def _collect(root: Path, sets: list[ListeningSet]) -> tuple[list[Job], list[str]]:
    """:func:`collect`, or no jobs when ``root`` holds no run but listening sets.

    Raises:
        NoRunsFound: neither runs nor ``sets``.
    """
    try:
        return collect(root)
    except NoRunsFound as exc:
        if sets:
            return [], []
        if root.is_dir():
            raise NoRunsFound(f"{exc}; nor any listening set ({MANIFEST}) below it") from None
        raise


def _write_runs(root: Path, jobs: list[Job], common: list[str], links: dict[str, str]) -> dict[str, Path]:
    """Write the run report's :data:`OUTPUTS` into ``root``; ``{name: path}``."""
    headers, rows = table_rows(jobs, root)
    scales = colour_scales(jobs)
    paths = {name: root / name for name in OUTPUTS}
    with atomic_path(paths["report.csv"]) as tmp:
        write_csv(tmp, headers, rows)
    with atomic_path(paths["report.md"]) as tmp:
        write_markdown(tmp, root, jobs, common, headers, rows)
    with atomic_path(paths["curves.png"]) as tmp:
        plot_curves(tmp, jobs)
    with atomic_path(paths["samples.png"]) as tmp:
        plot_samples(tmp, jobs, scales)
    with atomic_path(paths["report.html"]) as tmp:
        write_html(tmp, root, jobs, common, headers, rows, scales,
                   {f"{monitor_of(jobs)[1]} against step": paths["curves.png"], "first sample of every job": paths["samples.png"]},
                   links)
    return paths
