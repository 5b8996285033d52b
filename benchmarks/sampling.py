"""Sampling speed of single-tier MelNet, all in the same run: the ``melnet_compiled`` sampler,
the eager ``cached`` sampler (both O(frames·bins)), and the re-run-everything sampler of the
public implementations (O(frames²·bins); the ``reference`` sampler re-runs the whole
spectrogram per element, this one only its prefix, as the peers do).

Tiny config of the reference measurements (REFERENCE.md): 2 layers, hidden 64, K = 10,
64 mels, batch 1, 1 torch thread. Times are the best of ``--repeats`` runs; the compiled
sampler is warmed up first (its cold compile time is printed separately).

Batched rows (``--batched``, the default; ``--no-batched`` skips them): the compiled sampler
(float32 and bf16 weights, ``threads=auto``) and ``cached`` at batch 1 and 8, for the tiny shape
and for Table 2's width — hidden 512 with the ``speech`` config's first-tier 12 layers, 32 bins —
per stream and element with the set-up excluded (``(t(f2) − t(f1)) / ((f2 − f1) · bins · B)``),
each row with the roofline columns of :mod:`benchmarks.roofline` (weights read per element: the
frequency-delayed stack's and head's once, the time stack's frequency LSTMs once, its time LSTMs
and projections once per frame, i.e. ``/ bins``).

    python benchmarks/sampling.py                   # prints tables; copy them into RESULTS.md
    python benchmarks/sampling.py --rerun-frames 0  # skip the slow re-run sampler
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")  # before numba is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the apps: a waiting thread sleeps

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/roofline.py beside this script
from roofline import ROOFLINE_HEADER, matmul_rate, roofline_cells, stream_bandwidth  # noqa: E402
from melforge.core.model import SpectrogramModel  # noqa: E402
from melforge.plugins.batched_matmul import choose_chunks  # noqa: E402
from melforge.plugins.gmm.head import GMMHead  # noqa: E402
from melforge.plugins.melnet.backbone import build_melnet  # noqa: E402
from melforge.core.sampler import SampleRequest  # noqa: E402
from melforge.plugins.melnet.compiled_sampler import (  # noqa: E402
    MelNetCompiledSampler, extract_time_weights, extract_weights,
)
from melforge.plugins.samplers.cached import CachedSampler  # noqa: E402

#: (label, hidden, layers, bins, frames (f1, f2) compiled, frames (f1, f2) cached) of the batched rows.
BATCHED_SHAPES = (
    ("tiny (hidden 64, 2 layers)", 64, 2, 64, (4, 12), (1, 3)),
    ("Table 2 width (hidden 512, 12 layers)", 512, 12, 32, (1, 3), (1, 2)),
)


def sample_compiled(model: SpectrogramModel, **request):
    return MelNetCompiledSampler().sample(model, SampleRequest(**request))


def sample_cached(model: SpectrogramModel, **request):
    return CachedSampler().sample(model, SampleRequest(**request))


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


_COLD = """
import time, torch
t = time.perf_counter()
from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest
from melforge.plugins.melnet.compiled_sampler import MelNetCompiledSampler
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
imported = time.perf_counter()
MelNetCompiledSampler().sample(SpectrogramModel(build_melnet(64, 2), GMMHead(64, 10)), SampleRequest(1, 1, 64))
print(imported - t, time.perf_counter() - imported)
"""


def cold_start(cache_dir: str) -> tuple[float, float]:
    """Import time and first-call time (s) of the compiled sampler in a fresh process whose
    ``NUMBA_CACHE_DIR`` is ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True, capture_output=True, text=True)
    imported, first = map(float, out.stdout.split())
    return imported, first


def batched_rows(repeats: int) -> list[str]:
    """The batched table's rows (see the module docstring)."""
    bw = {1: stream_bandwidth(1), 2: stream_bandwidth(2)}
    lines = [f"stream bandwidth (same run): 1 core {bw[1]:.1f} GB/s, 2 cores {bw[2]:.1f} GB/s; load average "
             f"{os.getloadavg()[0]:.2f} at start of these rows\n",
             f"| shape | sampler | weights | threads | batch | ms per stream-element | {ROOFLINE_HEADER} |",
             "|---|---|---|---|---:|---:|---:|---|---:|---|---|"]
    for label, hidden, layers, bins, compiled_frames, cached_frames in BATCHED_SHAPES:
        torch.manual_seed(0)
        model = SpectrogramModel(build_melnet(hidden, layers), GMMHead(hidden, 10)).eval()
        k3 = model.head.num_params
        macs = layers * (9 * hidden**2) + k3 * hidden + layers * 27 * hidden**2
        for batch in (1, 8):
            variants = [("melnet_compiled", fmt, "auto") for fmt in ("fp32", "bf16")] + [("cached", "fp32", 1)]
            for name, fmt, threads in variants:
                sampler = MelNetCompiledSampler(weights=fmt, threads=threads) if name != "cached" else CachedSampler()
                frames = compiled_frames if name != "cached" else cached_frames
                sampler.sample(model, SampleRequest(batch=batch, frames=1, bins=bins))  # compile, fill the cache
                t = [_time(lambda f=f: sampler.sample(model, SampleRequest(
                    batch=batch, frames=f, bins=bins, generator=torch.Generator().manual_seed(0))), repeats)
                    for f in frames]
                per_element = max(t[1] - t[0], 1e-12) / ((frames[1] - frames[0]) * bins)  # all streams
                freq = extract_weights(model.backbone, model.head, fmt)
                wt_time, _, wt_freq, *_, wt_proj, _ = extract_time_weights(model.backbone, fmt)
                read = sum(w.nbytes for w in freq) + wt_freq.nbytes + (wt_time.nbytes + wt_proj.nbytes) / bins
                dtype_fmt = np.float32 if fmt == "fp32" else np.uint16
                used = 1 if name == "cached" else choose_chunks(np.zeros((2 * hidden, 4 * hidden), dtype_fmt), batch,
                                                                 np.float32, fmt, threads)
                rate = matmul_rate(2 * hidden, 4 * hidden, batch, fmt=fmt, threads=used)
                cells = roofline_cells(read, batch * macs, per_element, bw[min(used, 2)], rate)
                shown = f"auto → {used}" if threads == "auto" else str(threads)
                lines.append(f"| {label}, {bins} bins | {name} | {fmt} | {shown} | {batch} | "
                             f"{1e3 * per_element / batch:.4f} | {cells} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=64)
    parser.add_argument("--rerun-frames", type=int, default=8, help="frames for the slow re-run sampler (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-compile measurement")
    parser.add_argument("--no-batched", action="store_true", help="skip the batched rows with the roofline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SpectrogramModel(build_melnet(64, 2), GMMHead(64, 10)).eval()
    bins = args.bins
    samplers = {"compiled (Numba)": sample_compiled, "cached (eager PyTorch)": sample_cached}
    sample_compiled(model, batch=1, frames=2, bins=bins)  # compile / load the cache

    def run(fn, frames):
        return lambda: fn(model, batch=1, frames=frames, bins=bins,
                          generator=torch.Generator().manual_seed(0))

    ms = {}  # (sampler, frames) -> ms per element
    rows = []
    for frames in (64, 128):
        for name, fn in samplers.items():  # interleaved, so that load on the machine hits both
            seconds = _time(run(fn, frames), args.repeats)
            ms[name, frames] = 1000 * seconds / (frames * bins)
            rows.append((name, frames, seconds))
    double = SpectrogramModel(build_melnet(64, 2), GMMHead(64, 10)).double().eval()
    double.load_state_dict(model.state_dict())
    same = [
        fn(double, batch=1, frames=16, bins=bins, generator=torch.Generator().manual_seed(0)).x
        for fn in (sample_compiled, sample_cached)
    ]
    max_diff = float((same[0] - same[1]).abs().max())
    if args.rerun_frames:
        frames = args.rerun_frames
        seconds = _time(lambda: sample_by_rerunning(model, frames, bins, torch.Generator().manual_seed(0)), 1)
        rows.append(("re-run whole network per element", frames, seconds))
        ms["re-run whole network per element", frames] = 1000 * seconds / (frames * bins)
        if frames not in (64, 128):
            seconds = _time(run(sample_cached, frames), args.repeats)
            rows.append(("cached (eager PyTorch)", frames, seconds))
            ms["cached (eager PyTorch)", frames] = 1000 * seconds / (frames * bins)

    print(f"MelNet 1 tier, 2 layers, hidden 64, K=10, {bins} mels, batch 1, float32, "
          f"torch {torch.__version__}, 1 thread; best of {args.repeats}")
    print("| sampler | frames | elements | total (s) | ms per element |")
    print("|---|---:|---:|---:|---:|")
    for name, frames, seconds in rows:
        print(f"| {name} | {frames} | {frames * bins} | {seconds:.3f} | {1000 * seconds / (frames * bins):.4f} |")
    print()
    print("| frames | compiled ms/element | eager ms/element | eager / compiled |")
    print("|---:|---:|---:|---:|")
    c, e = "compiled (Numba)", "cached (eager PyTorch)"
    for frames in (64, 128):
        print(f"| {frames} | {ms[c, frames]:.4f} | {ms[e, frames]:.4f} | {ms[e, frames] / ms[c, frames]:.1f}x |")
    print(f"| linearity (ms/element at 128 / at 64) | {ms[c, 128] / ms[c, 64]:.2f} | {ms[e, 128] / ms[e, 64]:.2f} | |")
    print(f"\ncompiled vs eager, same seed, float64 copy of the model, 16 frames: max |difference| {max_diff:.1e}")
    if args.rerun_frames:
        f = args.rerun_frames
        rerun = ms["re-run whole network per element", f]
        print(f"re-run sampler at {f} frames: {rerun:.3f} ms per element, "
              f"{rerun / ms[e, f]:.0f}x the eager cached and {rerun / ms[c, 64]:.0f}x the compiled (64 frames)")
    if not args.no_batched:
        print()
        print("\n".join(batched_rows(args.repeats)))
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            cold = cold_start(cache)
            warm = cold_start(cache)
        print(f"compiled sampler start-up in a fresh process (import s, first call s): "
              f"empty Numba cache {cold[0]:.2f}, {cold[1]:.2f}; cache filled {warm[0]:.2f}, {warm[1]:.2f}")


if __name__ == "__main__":
    main()
