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
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_path
from .jobs import OUTPUTS, Curve, Job, NoRunsFound, collect, find_jobs, read_job
from .page import write_html
from .plots import colour_scales, plot_curves, plot_samples
from .tables import monitor_of, table_rows, write_csv, write_markdown

__all__ = ["OUTPUTS", "Curve", "Job", "NoRunsFound", "collect", "find_jobs", "read_job", "write_report"]


def write_report(root: str | os.PathLike) -> tuple[list[Job], dict[str, Path]]:
    """Read the run or sweep directory ``root`` and write ``report.md``, ``report.csv``,
    ``curves.png``, ``samples.png`` and ``report.html`` into it.

    Returns:
        The jobs read, and ``{output name: path}``.

    Raises:
        NoRunsFound: ``root`` holds no run.
    """
    root = Path(root)
    jobs, common = collect(root)
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
                   {f"{monitor_of(jobs)[1]} against step": paths["curves.png"], "first sample of every job": paths["samples.png"]})
    return jobs, paths
