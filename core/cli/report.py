"""``melforge-report DIR``: a run or sweep directory → ``report.md``, ``report.csv``,
``curves.png``, ``samples.png`` and a self-contained ``report.html`` (audio players included),
written into DIR; and ``listening.html`` when listening sets (``listening.json``, the same clips
through several vocoders) lie at or below DIR, alone when DIR holds no run.

    melforge-report multirun/2025-01-01_12-00-00     # a sweep: one row per job
    melforge-report runs/speech_tiny/2025-01-01_12-00-00

Errors (neither a run nor a listening set in DIR, a broken listening set, …) end it with exit status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse

from melforge.core.app import fail


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    parser = argparse.ArgumentParser(
        prog="melforge-report",
        description="Summarise a melforge run directory or sweep directory (melforge-train -m) into report.md, "
        "report.csv, curves.png, samples.png and report.html, written into DIR. Jobs that failed or are "
        "still running are shown with their status. Listening sets (listening.json) at or below DIR become "
        "listening.html: every clip through every vocoder, with players and spectrograms.",
    )
    parser.add_argument("dir", metavar="DIR", help="a run directory (holds metrics.json or checkpoints/), a sweep directory, or a folder of listening sets")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the paths written")
    args = parser.parse_args(argv)

    from melforge.core.report import (
        write_report,  # deferred: importing melforge.core.report takes 136 ms; start-up does not pay for it
    )

    try:
        jobs, paths = write_report(args.dir)
    except Exception as exc:  # noqa: BLE001 - one line, exit 2 (core.app)
        fail(parser.prog, exc)
        return
    if not args.quiet:
        for j in jobs:
            value = f"{j.valid:.4f}" if j.valid is not None else "-"
            extra = f" ({j.reason})" if j.reason else ""
            print(f"{j.name}: {j.status}, valid {j.monitor_label} {value}, steps {j.steps if j.steps is not None else '-'}"
                  f"  [{j.label}]{extra}")
    for path in paths.values():
        print(path)


if __name__ == "__main__":
    main()
