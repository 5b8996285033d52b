"""Start-up time of the command-line apps (issue 20, item 6), hyperfine-style: each command is run
``--runs`` times in a fresh process (after ``--warmup`` runs that fill the caches: the Numba
kernels' cache, the ``melforge-plugins`` listing cache, the OS page cache), and the table gives
the mean, standard deviation, min and max wall time, with ``python -c pass`` and ``import torch``
measured in the same run as references (on a loaded machine, compare ratios).

    .venv/bin/python benchmarks/startup.py [--runs 10] [--warmup 2] [--out table.md]

Targets: ``melforge-plugins`` and every ``--help`` within 1.5 s; ``melforge-invert`` of a 5 s
clip with ``griffin_lim`` within 3 s in all, in a fresh process with warm caches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def commands(clip: Path, out: Path) -> list[tuple[str, list[str]]]:
    """``(label, argv)`` of every measured command."""
    py = sys.executable
    return [
        ("python -c pass (reference)", [py, "-c", "pass"]),
        ("python -c 'import torch' (reference)", [py, "-c", "import torch"]),
        ("melforge-plugins", [str(BIN / "melforge-plugins")]),
        ("melforge-plugins --no-cache", [str(BIN / "melforge-plugins"), "--no-cache"]),
        ("melforge-train --help", [str(BIN / "melforge-train"), "--help"]),
        ("melforge-train --help experiment=wavenet_speech_tiny", [str(BIN / "melforge-train"), "--help",
                                                                  "experiment=wavenet_speech_tiny"]),
        ("melforge-sample --help", [str(BIN / "melforge-sample"), "--help"]),
        ("melforge-invert --help", [str(BIN / "melforge-invert"), "--help"]),
        ("melforge-invert, 5 s clip, griffin_lim", [str(BIN / "melforge-invert"), f"input={clip}", f"output={out}"]),
    ]


def five_second_clip(folder: Path) -> Path:
    """A 5 s, 16 kHz WAV (a chirp with an envelope): nothing to resample."""
    import numpy as np
    import soundfile as sf

    sr = 16000
    t = np.arange(5 * sr) / sr
    audio = 0.3 * np.sin(2 * np.pi * (150 + 60 * t) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    path = folder / "clip5.wav"
    sf.write(path, audio.astype(np.float32), sr)
    return path


def measure(argv: list[str], runs: int, warmup: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv`` after ``warmup`` unmeasured ones.

    Raises:
        RuntimeError: the command failed (its stderr's end).
    """
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    times = []
    for k in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr[-1500:]}")
        if k >= warmup:
            times.append(elapsed)
    return times


def table(rows: list[tuple[str, list[float]]]) -> str:
    """A Markdown table: mean ± sd, min, max (s), and the ratio to ``python -c pass``'s mean."""
    base = statistics.mean(rows[0][1])
    lines = ["| command | mean ± sd (s) | min (s) | max (s) | × python -c pass |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, times in rows:
        mean = statistics.mean(times)
        sd = statistics.stdev(times) if len(times) > 1 else 0.0
        lines.append(f"| `{label}` | {mean:.3f} ± {sd:.3f} | {min(times):.3f} | {max(times):.3f} | {mean / base:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="melforge-startup-"))
    try:
        clip = five_second_clip(folder)
        rows = []
        for label, argv in commands(clip, folder / "out.wav"):
            rows.append((label, measure(argv, args.runs, args.warmup)))
            print(f"{label}: {statistics.mean(rows[-1][1]):.3f} s", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    text = (f"{table(rows)}\n\n{args.runs} runs after {args.warmup} warm-up runs each; "
            f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at the end.")
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
