"""Sampling speed of two checkouts of melforge, side by side in one run: the same benchmark
scripts (``benchmarks/sampling.py`` for MelNet, ``benchmarks/wavenet_generation.py`` for
WaveNet) run alternately on each checkout, in rounds whose order flips (A B, B A, …), so that load
on the machine hits both alike. Prints each timed row's median over the rounds for both
checkouts and their ratio (new / base: above 1 is slower).

    git worktree add /tmp/base <commit>       # the previous commit
    python benchmarks/side_by_side.py --base /tmp/base --new . --rounds 3

Each checkout is imported as ``melforge`` from its own folder (a temporary package root on
``PYTHONPATH`` links to it), with this interpreter's packages.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

#: (benchmark script, its arguments, regex of a timed row → (row name, value), unit)
BENCHMARKS = [
    ("sampling.py", ["--rerun-frames", "0", "--no-cold", "--repeats", "2"],
     re.compile(r"^\| (compiled \(Numba\)|cached \(eager PyTorch\)) \| (\d+) \| \d+ \| [\d.]+ \| ([\d.]+) \|$"),
     "ms per element"),
    ("wavenet_generation.py", ["--no-blizzard", "--no-cold", "--repeats", "2"],
     re.compile(r"^\| (tiny[^|]*) \| \d+ \| [^|]+ \| \d+ \| (wavenet_compiled|cached) \| (\d+) \| [\d.]+ \| [\d,]+ \| ([\d,.]+) \|$"),
     "µs per sample"),
]


def run_once(root: Path, script: str, args: list[str]) -> dict[str, float]:
    """One run of ``benchmarks/<script>`` (the new checkout's copy) against the checkout at
    ``root``: ``{row: value}``."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "melforge").symlink_to(root.resolve())
        env = dict(os.environ, PYTHONPATH=tmp)
        out = subprocess.run([sys.executable, str(Path(__file__).parent / script), *args], env=env,
                             capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        for _, _, pattern, _ in (b for b in BENCHMARKS if b[0] == script):
            m = pattern.match(line.strip())
            if m:
                *name, value = m.groups()
                rows[" ".join(name)] = float(value.replace(",", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the previous commit")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for k in range(args.rounds):
        order = [("base", args.base), ("new", args.new)][:: 1 if k % 2 == 0 else -1]
        for script, bench_args, _, _ in BENCHMARKS:
            for label, root in order:
                for row, value in run_once(root, script, bench_args).items():
                    results.setdefault((script, row), {}).setdefault(label, []).append(value)
    print(f"side by side, {args.rounds} rounds (order flipped each round), load average {os.getloadavg()[0]:.2f} at end")
    print(f"base {args.base.resolve()}; new {args.new.resolve()}\n")
    print("| benchmark | row | unit | base (median) | new (median) | new / base |")
    print("|---|---|---|---:|---:|---:|")
    for (script, row), values in results.items():
        unit = next(b[3] for b in BENCHMARKS if b[0] == script)
        base, new = statistics.median(values["base"]), statistics.median(values["new"])
        print(f"| {script} | {row} | {unit} | {base:.4g} | {new:.4g} | {new / base:.3f} |")


if __name__ == "__main__":
    main()
