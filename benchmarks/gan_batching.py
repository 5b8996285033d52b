"""Batched GAN-vocoder inversion on one CPU thread: ``inverter.batch_samples`` against 8 single calls.

For each trained generator (``NAME:CHECKPOINT``, repeatable) and each ``batch_samples`` setting,
8 speech clips of equal length (the vocoder benchmark's dev split, its mel geometry)
are inverted in one ``invert_mel_batch`` call and in 8 calls of one clip. Every shape is run once
before timing (oneDNN builds its kernels on a shape's first call); then the calls are timed
``--repeats`` times, alternating, and the fastest of each is kept. The ratio (one batched call /
8 single calls) is the figure: below 1, batching pays. ``whole`` is ``batch_samples: null`` (the
whole batch in one generator call).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_batching.py \\
        --vocoder hifigan:RUN/checkpoints/step_00007000.pt --vocoder istftnet:... --vocoder melgan:...
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import vocoder_sets
from vocoder_rows import time_batched
from melforge.core.plugins import registries
from melforge.plugins.gan_vocoders.inverter import build_gan_vocoder

#: Settings of ``inverter.batch_samples`` tried (None: the whole batch in one call).
SETTINGS = (None, 32768, 65536, 131072, 262144)


def measure(spec: str, mels: np.ndarray, repeats: int) -> list[str]:
    """Table lines of one ``NAME:CHECKPOINT`` over :data:`SETTINGS`."""
    name, path = spec.split(":", 1)
    lines = []
    for setting in SETTINGS:
        vocoder = build_gan_vocoder(checkpoint=path, batch_samples=setting)  # the generator is the checkpoint's
        single, together = time_batched(vocoder.invert_mel_batch, mels, repeats)
        label = "whole" if setting is None else f"{setting}"
        lines.append(f"| {name} | {label} | {vocoder.clips_per_call(*mels.shape[:2])} | {single:.3f} | {together:.3f} "
                     f"| {together / single:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocoder", action="append", required=True, help="NAME:CHECKPOINT (hifigan, istftnet, melgan)")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rep = registries().representation.build(vocoder_sets.SPEECH_MEL)
    items = vocoder_sets.speech_items("dev", args.clips)  # a speed setting is chosen on dev clips too
    frames = min(len(rep.analyze(i.audio)) for i in items)
    mels = np.stack([np.exp(rep.analyze(i.audio)[:frames]) for i in items])
    print(f"{len(items)} clips of {frames} frames, one thread, best of {args.repeats}; load before: "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("| generator | batch_samples | clips a call | 8 single calls (s) | one batched call (s) | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for spec in args.vocoder:
        for line in measure(spec, mels, args.repeats):
            print(line, flush=True)
    print("load after: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
