"""WaveNet generation speed, all in the same run: the compiled Numba sampler
(``wavenet_compiled``), the eager ``cached`` sampler (Fast WaveNet queues in PyTorch) and the
``reference`` sampler (the whole network re-run for every sample), for the CPU tiny twin's shape
and for seed 000's Table 3 Blizzard shape, batch 1, float32, one thread.

Also: cost at two lengths (linearity), the real-time factor at 16 kHz, and the compiled
sampler's multiply-add rate (counted analytically, :func:`macs_per_sample`) against the rate of
a plain matrix–vector product measured in the same run — numba on one in-cache layer matrix and
numpy (BLAS) on a weight set as large as the model's — to say what bounds it.

    flock /tmp/melforge-bench.lock .venv/bin/python benchmarks/wavenet_generation.py
    .venv/bin/python benchmarks/wavenet_generation.py --no-blizzard --no-cold   # seconds

Times are the best of ``--repeats`` runs; samplers are interleaved so that load on the machine
hits all of them; the Numba kernel is compiled (or loaded from its cache) before timing, and its
cold start is measured separately in a fresh process.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # before numba is imported

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from numba import njit  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from melforge.core.model import SpectrogramModel  # noqa: E402
from melforge.core.sampler import SampleRequest  # noqa: E402
from melforge.plugins.categorical.head import CategoricalHead  # noqa: E402
from melforge.plugins.samplers.cached import CachedSampler  # noqa: E402
from melforge.plugins.samplers.reference import ReferenceSampler  # noqa: E402
from melforge.plugins.wavenet.backbone import build_wavenet  # noqa: E402
from melforge.plugins.wavenet.compiled_kernels import _matvec_acc  # noqa: E402
from melforge.plugins.wavenet.compiled_sampler import WaveNetCompiledSampler  # noqa: E402

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Shape:
    """A WaveNet + categorical head configuration and the lengths each sampler is timed at."""

    name: str
    layers: int
    residual: int
    skip: int
    classes: int
    reference: int  # samples for the re-run sampler (O(length²))
    cached: tuple[int, int]  # two lengths (linearity)
    compiled: tuple[int, int]


TINY = Shape("tiny twin", 20, 32, 64, 256, reference=128, cached=(500, 1000), compiled=(16000, 32000))
BLIZZARD = Shape("Table 3 Blizzard", 50, 512, 512, 256, reference=8, cached=(8, 24), compiled=(32, 96))


def macs_per_sample(layers: int, residual: int, skip: int, classes: int, kernel: int = 3) -> int:
    """Multiply-adds per generated sample of the compiled kernel: per layer the dilated
    convolution ``kernel·R → 2R`` and the fused skip/residual product ``R → S + R`` (the last
    layer's residual part is zeros but computed), then the output 1×1 ``S → S`` and the head
    ``S → classes``. Element-wise work (input projection, gates, biases, the draw) is not
    counted."""
    return layers * (kernel * residual * 2 * residual + residual * (skip + residual)) + skip * skip + skip * classes


def weight_bytes(model: SpectrogramModel) -> int:
    """Bytes of all parameters (what a batch-1 step reads once per sample)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _draw(sampler, model, samples: int):
    request = SampleRequest(batch=1, frames=samples, bins=1, generator=torch.Generator().manual_seed(0))
    return lambda: sampler.sample(model, request)


def matvec_rates(residual: int, skip: int, model_bytes: int, repeats: int) -> tuple[float, float, float]:
    """Same-run matrix–vector rates in GMAC/s (float32, one thread): numba ``_matvec_acc`` (the
    kernel's own product) on the tiny twin's convolution matrix ``(3R, 2R)`` (in L1/L2), numpy
    (BLAS sgemv) on the same matrix, and numpy over a stack of 1024×1024 matrices as large as
    ``model_bytes`` (streamed from memory, like one sample of a large model)."""
    rng = np.random.default_rng(0)
    wt = rng.standard_normal((3 * residual, 2 * residual)).astype(np.float32)
    v = rng.standard_normal(3 * residual).astype(np.float32)
    y = np.zeros(2 * residual, np.float32)
    calls = 20000
    _loop_matvec(wt, v, y, 10)
    numba_rate = wt.size * calls / _best(lambda: _loop_matvec(wt, v, y, calls), repeats) / 1e9
    w = wt.T.copy()
    numpy_small = wt.size * calls / _best(lambda: [w @ v for _ in range(calls)], repeats) / 1e9
    count = max(1, model_bytes // (1024 * 1024 * 4))
    big = [rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(count)]
    x = rng.standard_normal(1024).astype(np.float32)
    numpy_big = count * 1024 * 1024 / _best(lambda: [m @ x for m in big], repeats) / 1e9
    return numba_rate, numpy_small, numpy_big


@njit(fastmath={"contract"}, error_model="numpy")
def _loop_matvec(wt, v, y, calls):
    """``calls`` products ``y += wt^T v`` with the kernel's own routine."""
    for _ in range(calls):
        _matvec_acc(wt, v, y)
        v[0] = y[0] * np.float32(1e-9)  # a dependence between calls, as in the kernel

_COLD = """
import os, time, torch
os.environ["NUMBA_NUM_THREADS"] = "1"
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


def bench_shape(shape: Shape, repeats: int) -> dict:
    """Seconds per sampler and length for one shape (float32, batch 1, untrained weights:
    the cost does not depend on them)."""
    torch.manual_seed(0)
    backbone = build_wavenet(shape.layers, shape.residual, shape.skip)
    model = SpectrogramModel(backbone, CategoricalHead(shape.skip, shape.classes)).eval()
    compiled, cached, reference = WaveNetCompiledSampler(), CachedSampler(), ReferenceSampler()
    compiled.sample(model, SampleRequest(batch=1, frames=4, bins=1))  # compile / load the cache
    seconds: dict[tuple[str, int], float] = {}
    for i in range(2):  # interleaved: load on the machine hits both samplers alike; short, then long
        for name, sampler, lengths in (("wavenet_compiled", compiled, shape.compiled), ("cached", cached, shape.cached)):
            seconds[name, lengths[i]] = _best(_draw(sampler, model, lengths[i]), repeats)
    seconds["wavenet_compiled", 1] = _best(_draw(compiled, model, 1), repeats)  # set-up: weights, queues
    n = shape.compiled[0]  # every sample primed: the residual stack alone, no output network, head or draw
    primed = SampleRequest(batch=1, frames=n, bins=1, prime=torch.zeros(1, n, 1))
    seconds["wavenet_compiled, stack only (all primed)", n] = _best(lambda: compiled.sample(model, primed), repeats)
    seconds["reference", shape.reference] = _best(_draw(reference, model, shape.reference), 1)
    if shape.reference not in shape.cached:
        seconds["cached", shape.reference] = _best(_draw(cached, model, shape.reference), repeats)
    return {"model": model, "seconds": seconds, "receptive_field": backbone.receptive_field}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-blizzard", action="store_true", help="skip the Table 3 Blizzard shape")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-compile measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    shapes = [TINY] + ([] if args.no_blizzard else [BLIZZARD])
    results = {}
    with threadpool_limits(1):
        for shape in shapes:
            results[shape.name] = bench_shape(shape, args.repeats)
        big_bytes = weight_bytes(results[shapes[-1].name]["model"])
        rates = matvec_rates(TINY.residual, TINY.skip, big_bytes, args.repeats)

    print(f"WaveNet generation, batch 1, float32, 256 classes, kernel 3, dilation 2^(i mod 10); "
          f"torch {torch.__version__}, 1 thread, NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}; "
          f"best of {args.repeats} (reference: 1 run); load average {load_start:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end\n")
    print("| shape | layers | R / S | receptive field | sampler | samples | total (s) | samples/s | µs per sample |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|")
    for shape in shapes:
        r = results[shape.name]
        rows = sorted(r["seconds"].items(), key=lambda kv: (kv[0][0] != "wavenet_compiled", kv[0][0], kv[0][1]))
        for (name, n), sec in rows:
            print(f"| {shape.name} | {shape.layers} | {shape.residual} / {shape.skip} | {r['receptive_field']} | "
                  f"{name} | {n} | {sec:.3f} | {n / sec:,.0f} | {1e6 * sec / n:,.1f} |")
    print()
    print("| shape | compiled set-up (s) | compiled µs/sample (short, long) | cached µs/sample (short, long) | "
          "cached / compiled (short, long) | linearity compiled | linearity cached | reference / compiled | "
          "MAC per sample | compiled GMAC/s | weights (MB) | weights read GB/s |")
    print("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape in shapes:
        s = results[shape.name]["seconds"]
        setup = s["wavenet_compiled", 1]
        c = [(s["wavenet_compiled", n] - setup) / (n - 1) for n in shape.compiled]  # set-up subtracted
        e = [s["cached", n] / n for n in shape.cached]
        ref = s["reference", shape.reference] / shape.reference
        best = min(c)
        macs = macs_per_sample(shape.layers, shape.residual, shape.skip, shape.classes)
        mb = weight_bytes(results[shape.name]["model"]) / 1e6
        print(f"| {shape.name} | {setup:.3f} | {1e6 * c[0]:,.1f}, {1e6 * c[1]:,.1f} | {1e6 * e[0]:,.0f}, {1e6 * e[1]:,.0f} | "
              f"{e[0] / c[0]:.1f}x, {e[1] / c[1]:.1f}x | {c[1] / c[0]:.2f} | {e[1] / e[0]:.2f} | "
              f"{ref / best:.0f}x ({shape.reference} samples) | {macs:,} | {macs / best / 1e9:.2f} | {mb:.1f} | "
              f"{mb / 1e3 / best:.1f} |")
    print("(compiled µs/sample: (time - set-up time) / (samples - 1), the set-up being a 1-sample call; short and "
          "long: the two lengths of the first table; linearity: µs/sample at the long length / at the short, "
          "1 = linear; GMAC/s and GB/s at the better of the two)")
    tiny = results[TINY.name]["seconds"]
    rtf = max(n / sec for (name, n), sec in tiny.items() if name == "wavenet_compiled" and n > 1) / SAMPLE_RATE
    print(f"\ntiny twin, compiled: {rtf:.2f}x real time at {SAMPLE_RATE} Hz "
          f"(seconds of audio per second of compute)")
    print(f"same-run matrix-vector rates, float32, 1 thread: numba _matvec_acc on the tiny conv matrix "
          f"({3 * TINY.residual}x{2 * TINY.residual}, in cache) {rates[0]:.1f} GMAC/s; numpy sgemv on it "
          f"{rates[1]:.1f} GMAC/s; numpy sgemv over {big_bytes / 1e6:.0f} MB of 1024x1024 matrices "
          f"(streamed from memory) {rates[2]:.1f} GMAC/s = {4 * rates[2]:.1f} GB/s")
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            cold = cold_start(cache)
            warm = cold_start(cache)
        print(f"compiled sampler start-up in a fresh process (import s, first call s): "
              f"empty Numba cache {cold[0]:.2f}, {cold[1]:.2f}; cache filled {warm[0]:.2f}, {warm[1]:.2f}")


if __name__ == "__main__":
    main()
