"""WaveNet generation speed against the machine's limits, all in the same run: the batched
compiled Numba sampler (``wavenet_compiled``: float32, bf16 and fp16 weights; one thread, two,
and the per-shape choice ``threads=auto``) and the eager ``cached`` sampler (Fast WaveNet queues
in PyTorch), for the CPU tiny twin's shape and seed 000's Table 3 Blizzard shape, at batch 1, 8
and 32, float32 activations.

Every row carries the roofline columns (:mod:`benchmarks.roofline`): weight bytes read per step
and the achieved GB/s as a % of the stream bandwidth measured in this run (one core for one
thread, two for two), MACs per step and the achieved GMAC/s as a % of the batched product's rate
at the row's shape (the dilated convolution ``(3R, 2R)`` at the row's batch, format and threads,
in cache), and which of the two bounds the row.

Costs are per stream and sample with the set-up excluded: ``(t(n2) − t(n1)) / ((n2 − n1) · B)``
for two lengths ``n1 < n2`` (best of ``--repeats`` each, after a warm-up call that fills the
sampler's weight cache). The set-up itself is the first call of a fresh sampler (weights
extracted) against a second call (from the cache).

    flock /tmp/melforge-bench.lock .venv/bin/python benchmarks/wavenet_generation.py
    .venv/bin/python benchmarks/wavenet_generation.py --no-blizzard --no-cold   # seconds
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
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/roofline.py beside this script
from roofline import ROOFLINE_HEADER, matmul_rate, roofline_cells, stream_bandwidth  # noqa: E402
from melforge.core.model import SpectrogramModel  # noqa: E402
from melforge.core.sampler import SampleRequest  # noqa: E402
from melforge.plugins.batched_matmul import choose_chunks  # noqa: E402
from melforge.plugins.categorical.head import CategoricalHead  # noqa: E402
from melforge.plugins.samplers.cached import CachedSampler  # noqa: E402
from melforge.plugins.samplers.reference import ReferenceSampler  # noqa: E402
from melforge.plugins.wavenet.backbone import build_wavenet  # noqa: E402
from melforge.plugins.wavenet.compiled_sampler import WaveNetCompiledSampler, extract_weights  # noqa: E402

SAMPLE_RATE = 16000
BATCHES = (1, 8, 32)


@dataclass(frozen=True)
class Shape:
    """A WaveNet + categorical head configuration and the two lengths each sampler is timed at."""

    name: str
    layers: int
    residual: int
    skip: int
    classes: int
    compiled: tuple[int, int]
    cached: tuple[int, int]


TINY = Shape("tiny twin", 20, 32, 64, 256, compiled=(400, 1200), cached=(10, 30))
BLIZZARD = Shape("Table 3 Blizzard", 50, 512, 512, 256, compiled=(2, 6), cached=(1, 3))
#: The compiled variants of every row: (weights, threads).
VARIANTS = (("fp32", 1), ("fp32", 2), ("fp32", "auto"), ("bf16", "auto"), ("fp16", "auto"))


def macs_per_sample(layers: int, residual: int, skip: int, classes: int, kernel: int = 3) -> int:
    """Multiply-adds per generated sample and stream: per layer the dilated convolution
    ``kernel·R → 2R`` and the fused skip/residual product ``R → S + R`` (the last layer's
    residual part is zeros but computed), then the output 1×1 ``S → S`` and the head
    ``S → classes``. Element-wise work (input projection, gates, biases, the draw) is not
    counted."""
    return layers * (kernel * residual * 2 * residual + residual * (skip + residual)) + skip * skip + skip * classes


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _draw(sampler, model, batch: int, samples: int):
    request = SampleRequest(batch=batch, frames=samples, bins=1, generator=torch.Generator().manual_seed(0))
    return lambda: sampler.sample(model, request)


def per_sample(sampler, model, batch: int, lengths: tuple[int, int], repeats: int) -> float:
    """Seconds per stream and sample, set-up excluded (see the module docstring)."""
    _draw(sampler, model, batch, 1)()  # fills the weight cache, compiles
    t1, t2 = (_best(_draw(sampler, model, batch, n), repeats) for n in lengths)
    return max(t2 - t1, 1e-12) / (lengths[1] - lengths[0]) / batch


def bench_shape(shape: Shape, repeats: int, limits: dict) -> list[dict]:
    """One row per (batch, sampler variant) of ``shape``: seconds per stream-sample and the
    roofline inputs (float32 activations, untrained weights: the cost does not depend on them)."""
    torch.manual_seed(0)
    backbone = build_wavenet(shape.layers, shape.residual, shape.skip)
    model = SpectrogramModel(backbone, CategoricalHead(shape.skip, shape.classes)).eval()
    macs = macs_per_sample(shape.layers, shape.residual, shape.skip, shape.classes)
    conv = (3 * shape.residual, 2 * shape.residual)
    weight_bytes = {fmt: sum(w.nbytes for w in extract_weights(backbone, model.head, fmt)) for fmt in ("fp32", "bf16")}
    weight_bytes["fp16"] = weight_bytes["bf16"]
    rows = []
    for batch in BATCHES:
        for fmt, threads in VARIANTS:
            sampler = WaveNetCompiledSampler(weights=fmt, threads=threads)
            seconds = per_sample(sampler, model, batch, shape.compiled, repeats)
            used = choose_chunks(np.zeros(conv, np.float32 if fmt == "fp32" else np.uint16), batch, np.float32, fmt,
                                 threads)
            key = (conv, batch, fmt, used)
            if key not in limits["rate"]:
                limits["rate"][key] = matmul_rate(*conv, batch, fmt=fmt, threads=used)
            rows.append(dict(shape=shape, sampler="wavenet_compiled", fmt=fmt, threads=threads, used=used, batch=batch,
                             seconds=seconds, bytes=weight_bytes[fmt], macs=batch * macs,
                             bandwidth=limits["bandwidth"][min(used, 2)], rate=limits["rate"][key]))
        seconds = per_sample(CachedSampler(), model, batch, shape.cached, repeats)
        rows.append(dict(shape=shape, sampler="cached", fmt="fp32", threads=1, used=1, batch=batch, seconds=seconds,
                         bytes=weight_bytes["fp32"], macs=batch * macs, bandwidth=limits["bandwidth"][1],
                         rate=limits["rate"].get((conv, batch, "fp32", 1)) or matmul_rate(*conv, batch)))
    fresh = WaveNetCompiledSampler()
    first = _best(_draw(fresh, model, 1, 1), 1)
    second = _best(_draw(fresh, model, 1, 1), 1)
    limits["setup"][shape.name] = (first, second, fresh.cache.extractions)
    return rows


def print_rows(rows: list[dict]) -> None:
    """The main table, and per shape the batch and sampler ratios the targets ask for."""
    print(f"| shape | sampler | weights | threads | batch | ms per stream-sample | {ROOFLINE_HEADER} |")
    print("|---|---|---|---|---:|---:|---:|---|---:|---|---|")
    for r in rows:
        threads = f"{r['threads']} → {r['used']}" if r["threads"] == "auto" else str(r["threads"])
        step = r["seconds"] * r["batch"]
        cells = roofline_cells(r["bytes"], r["macs"], step, r["bandwidth"], r["rate"])
        print(f"| {r['shape'].name} | {r['sampler']} | {r['fmt']} | {threads} | {r['batch']} | "
              f"{1e3 * r['seconds']:,.3f} | {cells} |")
    print()
    print("| shape | variant | batch 8 / batch 1 | batch 32 / batch 1 | cached / compiled at 1, 8, 32 |")
    print("|---|---|---:|---:|---|")
    for name in dict.fromkeys(r["shape"].name for r in rows):
        mine = [r for r in rows if r["shape"].name == name]
        cached = {r["batch"]: r["seconds"] for r in mine if r["sampler"] == "cached"}
        for fmt, threads in VARIANTS:
            s = {r["batch"]: r["seconds"] for r in mine if r["fmt"] == fmt and r["threads"] == threads
                 and r["sampler"] == "wavenet_compiled"}
            ratios = ", ".join(f"{cached[b] / s[b]:.1f}x" for b in BATCHES)
            print(f"| {name} | {fmt}, threads {threads} | {s[8] / s[1]:.3f} | {s[32] / s[1]:.3f} | {ratios} |")


_COLD = """
import os, time, torch
t = time.perf_counter()
from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest
from melforge.plugins.categorical.head import CategoricalHead
from melforge.plugins.wavenet.backbone import build_wavenet
from melforge.plugins.wavenet.compiled_sampler import WaveNetCompiledSampler
imported = time.perf_counter()
model = SpectrogramModel(build_wavenet(2, 4, 4), CategoricalHead(4, 256)).eval()
WaveNetCompiledSampler().sample(model, SampleRequest(batch=1, frames=2, bins=1))
print(imported - t, time.perf_counter() - imported)
"""


def cold_start(cache_dir: str) -> tuple[float, float]:
    """Import time and first-call time (s) of the compiled sampler (float32) in a fresh process
    whose ``NUMBA_CACHE_DIR`` is ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True, capture_output=True, text=True)
    imported, first = map(float, out.stdout.split())
    return imported, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-blizzard", action="store_true", help="skip the Table 3 Blizzard shape")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-compile measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    shapes = [TINY] + ([] if args.no_blizzard else [BLIZZARD])
    with threadpool_limits(1):
        limits = {"bandwidth": {1: stream_bandwidth(1), 2: stream_bandwidth(2)}, "rate": {}, "setup": {}}
        rows = [row for shape in shapes for row in bench_shape(shape, args.repeats, limits)]
        torch.manual_seed(0)
        tiny = SpectrogramModel(build_wavenet(TINY.layers, TINY.residual, TINY.skip),
                                CategoricalHead(TINY.skip, TINY.classes)).eval()
        reference = _best(_draw(ReferenceSampler(), tiny, 1, 128), 1) / 128
    bw = limits["bandwidth"]
    print(f"WaveNet generation, float32 activations, 256 classes, kernel 3, dilation 2^(i mod 10); "
          f"torch {torch.__version__} (1 thread), NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; best of {args.repeats}; load average {load_start:.2f} "
          f"at start, {os.getloadavg()[0]:.2f} at end; stream bandwidth (same run) 1 core {bw[1]:.1f} GB/s, "
          f"2 cores {bw[2]:.1f} GB/s\n")
    print_rows(rows)
    print()
    for name, (first, second, extractions) in limits["setup"].items():
        print(f"{name}: set-up — first 1-sample call of a fresh sampler {first:.3f} s, second {second:.3f} s "
              f"({extractions} extraction)")
    t8 = [r["seconds"] for r in rows if r["shape"] is TINY and r["batch"] == 8 and r["sampler"] == "wavenet_compiled"]
    t1 = [r["seconds"] for r in rows if r["shape"] is TINY and r["batch"] == 1 and r["sampler"] == "wavenet_compiled"]
    print(f"tiny twin: best compiled at batch 8 {1 / min(t8) / SAMPLE_RATE:.2f}x real time per stream at "
          f"{SAMPLE_RATE} Hz; reference sampler at batch 1 {1e3 * reference:.2f} ms per sample "
          f"({reference / min(t1):.0f}x the best compiled)")
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            cold = cold_start(cache)
            warm = cold_start(cache)
        print(f"compiled sampler start-up in a fresh process (import s, first call s): "
              f"empty Numba cache {cold[0]:.2f}, {cold[1]:.2f}; cache filled {warm[0]:.2f}, {warm[1]:.2f}")


if __name__ == "__main__":
    main()
