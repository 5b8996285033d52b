"""Sampling speed of single-tier MelNet: the cached O(frames·bins) sampler against the
re-run-everything sampler of the public implementations (O(frames²·bins)), in the same run.

Tiny config of the reference measurements (REFERENCE.md): 2 layers, hidden 64, K = 10,
64 mels, batch 1, 1 thread.

    python benchmarks/sampling.py            # prints a table; copy it into RESULTS.md
"""

from __future__ import annotations

import argparse
import time

import torch

from melforge.core.model import SpectrogramModel
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet


@torch.no_grad()
def sample_by_rerunning(model: SpectrogramModel, frames: int, bins: int, generator: torch.Generator) -> torch.Tensor:
    """The peers' method: for every element, run the whole network on the prefix so far and
    read the parameters at that element. Returns ``(1, frames, bins)``."""
    x = torch.zeros(1, frames, bins)
    for i in range(frames):
        for j in range(bins):
            params = model.head(model.backbone(x[:, : i + 1]))[:, i, j]  # (1, 3K)
            x[:, i, j] = model.head.sample(params, 1.0, generator)
    return x


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=64)
    parser.add_argument("--rerun-frames", type=int, default=8, help="frames for the slow re-run sampler")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SpectrogramModel(build_melnet(64, 2), GMMHead(64, 10)).eval()
    bins = args.bins
    rows = []
    for frames in sorted({args.rerun_frames, 64, 128}):
        seconds = _time(
            lambda: model.sample(batch=1, frames=frames, bins=bins, generator=torch.Generator().manual_seed(0)),
            args.repeats,
        )
        rows.append(("cached (eager PyTorch)", frames, seconds))
    frames = args.rerun_frames
    seconds = _time(lambda: sample_by_rerunning(model, frames, bins, torch.Generator().manual_seed(0)), 1)
    rows.append(("re-run whole network per element", frames, seconds))
    cached_small = next(r[2] for r in rows if r[1] == args.rerun_frames) / (args.rerun_frames * bins)
    print(f"MelNet 1 tier, 2 layers, hidden 64, K=10, {bins} mels, batch 1, torch {torch.__version__}, 1 thread")
    print(f"| sampler | frames | elements | total (s) | ms per element |")
    print(f"|---|---:|---:|---:|---:|")
    for name, frames, seconds in rows:
        print(f"| {name} | {frames} | {frames * bins} | {seconds:.2f} | {1000 * seconds / (frames * bins):.3f} |")
    rerun = rows[-1][2] / (args.rerun_frames * bins)
    by_frames = {r[1]: r[2] for r in rows[:-1]}
    print(f"\nspeed-up of the cached sampler at {args.rerun_frames} frames: {rerun / cached_small:.0f}x "
          f"(the re-run sampler's cost per element grows with the frame count; the cached one's does not: "
          f"{1000 * by_frames[64] / (64 * bins):.3f} vs {1000 * by_frames[128] / (128 * bins):.3f} ms at 64 vs 128 frames)")


if __name__ == "__main__":
    main()
