"""What 16-bit weights (``sampler.weights=fp16|bf16``) cost in fidelity: the teacher-forced
log-probability of real clips under the float32 weights and under the same weights rounded to
fp16 / bf16, for a briefly trained WaveNet tiny twin (μ-law speech) and MelNet (log-mel speech).

The compiled samplers store every weight matrix at 16 bits and accumulate in float32, with the
biases, initial states and 1-wide input projections in float32; a model whose matrices are
rounded the same way computes exactly what they compute (``tests/test_batched_sampling.py``:
bit-identical draws), so ``model.log_prob`` of the rounded copy is the sampler's own
log-probability of the clip.

Data: the project's prepared features in ``~/.cache/melforge/features`` (English Asterisk
prompts: the μ-law waveform of the WaveNet twin and the 64-band log-mel of MelNet, standardised
here by their global mean and deviation); the last ``--clips`` clips are held out for the
measurement, the others train the models for ``--steps`` Adam steps (so that the distributions
are not those of an untrained network).

    .venv/bin/python benchmarks/half_weights.py
"""

from __future__ import annotations

import argparse
import copy
import glob
import os

import numpy as np
import torch

from melforge.core.model import SpectrogramModel
from melforge.plugins.batched_matmul import from_bits, to_bits
from melforge.plugins.categorical.head import CategoricalHead
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.wavenet.backbone import build_wavenet

FEATURES = os.path.expanduser("~/.cache/melforge/features")


def load(width: int) -> list[np.ndarray]:
    """The prepared clips of feature width ``width`` (1: μ-law waveform, 64: log-mel), longest
    cache file first, as ``(frames, width)`` float32 arrays."""
    for path in sorted(glob.glob(f"{FEATURES}/*.npz"), key=os.path.getsize, reverse=True):
        data = np.load(path)
        if data["features"].shape[1] == width:
            ends = np.cumsum(data["lengths"])
            return np.split(data["features"], ends[:-1])
    raise FileNotFoundError(f"no prepared features of width {width} in {FEATURES}")


def rounded(model: SpectrogramModel, fmt: str) -> SpectrogramModel:
    """A copy with the matrices the compiled samplers store at 16 bits rounded to ``fmt``:
    every weight of two or more dimensions whose input width is not 1."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if name.endswith("weight") and p.dim() >= 2 and p.shape[1] != 1:
                p.copy_(torch.from_numpy(from_bits(to_bits(p.numpy(), fmt), fmt)))
    return out


def crops(clips: list[np.ndarray], length: int, count: int, rng) -> torch.Tensor:
    """``count`` random crops ``(count, length, width)`` from clips at least ``length`` long."""
    long = [c for c in clips if len(c) >= length]
    picks = []
    for _ in range(count):
        c = long[rng.integers(len(long))]
        start = rng.integers(len(c) - length + 1)
        picks.append(c[start:start + length])
    return torch.from_numpy(np.stack(picks))


def train(model: SpectrogramModel, clips, length: int, steps: int, rng) -> float:
    """``steps`` Adam steps (lr 1e-3, batch 4) on random crops; returns the last NLL per element."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        x = crops(clips, length, 4, rng)
        loss = -model.log_prob(x).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return float(loss.detach())


@torch.no_grad()
def fidelity(model: SpectrogramModel, held_out: torch.Tensor) -> dict[str, tuple[float, float, float]]:
    """Per format: (mean log-prob per element, mean change against fp32, mean |change| per
    clip) in nats per element."""
    base = model.log_prob(held_out).mean(dim=(1, 2))  # (clips,)
    out = {"fp32": (float(base.mean()), 0.0, 0.0)}
    for fmt in ("bf16", "fp16"):
        lp = rounded(model, fmt).log_prob(held_out).mean(dim=(1, 2))
        out[fmt] = (float(lp.mean()), float((lp - base).mean()), float((lp - base).abs().mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--clips", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    wave = load(1)
    mel = load(64)
    stack = np.concatenate(mel[:-args.clips])
    mean, std = stack.mean(), stack.std()
    mel = [(m - mean) / std for m in mel]
    rows = []
    wavenet = SpectrogramModel(build_wavenet(20, 32, 64), CategoricalHead(64, 256))
    nll = train(wavenet, wave[:-args.clips], 4000, args.steps, rng)
    held = crops(wave[-args.clips:], 8000, args.clips, rng)
    rows.append(("WaveNet tiny twin (20 layers, 32 / 64), μ-law speech", "sample", nll, held, fidelity(wavenet, held)))
    melnet = SpectrogramModel(build_melnet(64, 2), GMMHead(64, 10))
    nll = train(melnet, mel[:-args.clips], 32, args.steps, rng)
    held = crops(mel[-args.clips:], 48, args.clips, rng)
    rows.append(("MelNet (2 layers, hidden 64, K = 10), 64-band log-mel", "mel bin", nll, held, fidelity(melnet, held)))
    print(f"{args.steps} Adam steps (lr 1e-3, batch 4) on the training clips; {args.clips} held-out crops\n")
    print("| model | train NLL at the end | held-out elements | weights | log-prob (nats/element) | "
          "change vs fp32 | mean |change| per clip |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, unit, nll, held, result in rows:
        for fmt, (lp, change, size) in result.items():
            print(f"| {name} | {nll:.3f} | {held[0].numel():,} per clip | {fmt} | {lp:.5f} per {unit} | "
                  f"{change:+.2e} | {size:.2e} |")


if __name__ == "__main__":
    main()
