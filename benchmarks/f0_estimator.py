"""Ablation of the source-filter vocoders' F0 / voicing estimator on music: with and without its
2-D front end, with a log-F0 regression head or CREPE's pitch bins, trained alone on ``gm_notes``
and scored on ``gm_notes``' validation notes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/f0_estimator.py [--notes 100] [--steps 6000] \\
        [--front 0 16] [--head regression bins] [--seed 0] [--lr 1e-3] [--every 0]

This is a *dev* experiment: it chose ``ddsp_music_tiny``'s ``inverter.estimator_front_channels``
and ``inverter.estimator_head``; every (front, head) pair is one row.
The data, labels and split are exactly those of a ``ddsp_music_tiny`` run (music geometry:
22,050 Hz, n_fft 1024, hop 256, 80 mels to 11,025 Hz; ``gm_notes`` on FluidR3_GM, clips split by
the hash of their id with ``valid_fraction`` 0.05 and trimmed at 60 dB; pyin labels 50–2200 Hz with
a 2048-sample window, cached); no test item (TimGM6mb) is read. Each estimator is trained alone
(the vocoder's loss does not touch its parameters in a joint run: one Adam, disjoint weights) on
random 32-frame crops, batch 8, Adam lr 1e-3, for ``--steps`` steps (the F0 term is the head's:
log-F0 L1 or the pitch-bin cross-entropy, plus the voicing BCE), then scored with
:func:`melforge.plugins.source_filter.pitch.f0_figures` on every validation clip whole: median and
mean |cents| on pyin-voiced frames and V/UV accuracy. The last column is the ratio of the median to
the first row's (the reference).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from melforge.core.clips import split_clips
from melforge.datasets.gm_notes import GMNotes
from melforge.plugins.gan_vocoders.crops import AlignedCrops
from melforge.plugins.representations.log_mel import LogMel
from melforge.plugins.source_filter.estimator import F0Estimator
from melforge.plugins.source_filter.learner import labelled_rows
from melforge.plugins.source_filter.pitch import cached_pyin_labels, f0_figures
from melforge.plugins.source_filter.pitch_heads import build_head
from vocoder_sets import MUSIC_MEL

#: ``ddsp_music_tiny``'s label settings and split (configs/experiment/ddsp_music_tiny.yaml; a
#: test checks that they agree).
FMIN, FMAX, PYIN_FRAME, VALID_FRACTION, TRIM_DB = 50.0, 2200.0, 2048, 0.05, 60.0
#: The estimator's 1-D stack ``(channels, layers, kernel)`` in ``ddsp_music_tiny``.
STACK = (64, 4, 5)
#: The pitch-bin head's spacing (cents) in ``ddsp_music_tiny`` (``inverter.estimator_bin_cents``).
BIN_CENTS = 20.0
#: The rows compared by default: no front end (the reference), 16 maps.
DEFAULT_FRONT = (0, 16)


def labelled(notes: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``(train rows, train audio, valid rows)``: ``(frames, 80 + 2)`` ``[log-mel, f0 Hz, voiced]``
    of gm_notes' clips, split and labelled as a ``ddsp_music_tiny`` run does."""
    rep = LogMel(**{k: v for k, v in MUSIC_MEL.items() if k != "name"})
    train, valid, _ = split_clips(GMNotes(notes=notes), rep, VALID_FRACTION, TRIM_DB)
    rows = {}
    for name, audios in (("train", train), ("valid", valid)):
        labels = cached_pyin_labels(audios, rep.sr, rep.hop_length, PYIN_FRAME, FMIN, FMAX)
        rows[name] = labelled_rows([rep.analyze(a) for a in audios], labels)
    return rows["train"], train, rows["valid"]


@torch.no_grad()
def score(estimator: F0Estimator, valid: list[np.ndarray]) -> dict[str, float]:
    """:func:`f0_figures` of ``estimator`` on every validation clip, whole."""
    estimator.eval()
    parts = []
    for r in valid:
        log_f0, logit = estimator(torch.from_numpy(r[None, :, :-2]))
        parts.append(np.stack([estimator.f0_hz(log_f0)[0].numpy(), torch.sigmoid(logit)[0].numpy(), r[:, -2], r[:, -1]], 1))
    estimator.train()
    e = np.concatenate(parts)
    return f0_figures(e[:, 0], e[:, 1], e[:, 2], e[:, 3])


def train(front: int, crops: AlignedCrops, steps: int, seed: int, lr: float = 1e-3,
          on_step=None, head: str = "regression") -> tuple[F0Estimator, float]:
    """An estimator (``ddsp_music_tiny``'s sizes, ``front`` front-end maps, ``head`` ``regression``
    or ``bins`` (:data:`BIN_CENTS` apart)) after ``steps`` Adam steps (learning rate ``lr``) on the estimator's two
    losses; and the seconds they took (``on_step(step, estimator)``, if given, runs after every
    step, outside the timing)."""
    torch.manual_seed(seed)
    estimator = F0Estimator(MUSIC_MEL["n_mels"], *STACK, FMIN, FMAX, front_channels=front,
                            head=build_head(head, FMIN, FMAX, BIN_CENTS))
    opt = torch.optim.Adam(estimator.parameters(), lr)
    generator = torch.Generator().manual_seed(seed)
    n = MUSIC_MEL["n_mels"]
    elapsed = 0.0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        rows, _ = crops.draw(8, generator)
        terms = estimator.losses(estimator.outputs(rows[..., :n]), rows[..., n], rows[..., n + 1])
        opt.zero_grad()
        (terms[estimator.head.loss_name] + terms["vuv_bce"]).backward()
        opt.step()
        elapsed += time.perf_counter() - start
        if on_step is not None:
            on_step(step, estimator)
    return estimator, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=100, help="gm_notes' notes per program")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--front", type=int, nargs="+", default=list(DEFAULT_FRONT), help="front-end maps of each row (0: none)")
    parser.add_argument("--head", nargs="+", default=["regression"], choices=["regression", "bins"],
                        help="output heads of the rows (each with every --front)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--every", type=int, default=0, help="also score every N steps (0: only at the end)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_rows, train_audio, valid = labelled(args.notes)
    crops = AlignedCrops(train_rows, train_audio, MUSIC_MEL["hop_length"], 32)
    print(f"gm_notes, {args.notes} notes a program: {len(train_rows)} training clips, {len(valid)} validation clips; "
          f"{args.steps} steps, batch 8, Adam lr {args.lr:g}, one thread\n")
    print("| front-end maps | head | parameters | training (s) | median cents | mean cents | V/UV accuracy | median / first row |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    reference, trajectory, trajectories = None, [], []

    def track(step: int, estimator: F0Estimator) -> None:
        if args.every and step % args.every == 0:
            trajectory.append((step, score(estimator, valid)))

    for front, head in [(f, h) for h in args.head for f in args.front]:
        trajectory.clear()
        estimator, seconds = train(front, crops, args.steps, args.seed, args.lr, track, head)
        f = score(estimator, valid)
        reference = reference or f["f0_cents"]
        params = sum(p.numel() for p in estimator.parameters())
        print(f"| {front} | {head} | {params:,} | {seconds:.0f} | {f['f0_cents']:.1f} | {f['f0_cents_mean']:.1f} | "
              f"{f['vuv_accuracy']:.3f} | {f['f0_cents'] / reference:.2f} |", flush=True)
        if trajectory:  # printed under the table, so that its rows stay one table
            trajectories.append(f"  front {front}, {head}, every {args.every} steps (median / mean cents): "
                                + ", ".join(f"{k}: {t['f0_cents']:.0f} / {t['f0_cents_mean']:.0f}" for k, t in trajectory))
    if trajectories:
        print("\n" + "\n".join(trajectories))


if __name__ == "__main__":
    main()
