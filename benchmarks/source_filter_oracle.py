"""How much of a source-filter vocoder's harmonic error on music is its F0 estimate: the single
notes of the music *dev* split (N+C rendered with FluidR3_GM, see :mod:`vocoder_sets`) inverted by a
trained DDSP / hn-NSF checkpoint twice, once as an inverter does (the estimator's F0 and voicing
from the mel) and once with the note's nominal fundamental as F0 (an oracle; the estimator's
voicing kept), against ``librosa`` GL-100 (the benchmark's row) as the reference.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/source_filter_oracle.py RUN/checkpoints/step_N.pt [--note-step 8]

A dev diagnostic only: it reads no test item (TimGM6mb). Columns: H_err Σ5 and per partial (seed
002 eq. 13, semitones; :func:`melforge.core.metrics.harmonic_error`), the estimator's median
|cents| from the nominal fundamental over the frames it calls voiced, and each row's H_err Σ5 over
GL-100's.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from melforge.core.metrics import harmonic_error
from melforge.core.plugins import registries
from melforge.plugins.source_filter.inverter import load_trained
from melforge.plugins.source_filter.pitch import cents
from vocoder_rows import librosa_rows
from vocoder_sets import MUSIC_MEL, music_items


@torch.no_grad()
def invert_both(model, log_mel: torch.Tensor, f0_nominal: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``log_mel (1, frames, n_mels)`` → ``(audio with the estimator's F0, audio with the nominal
    F0, median |cents| of the estimate on its voiced frames (NaN when none))``; noise seed 0."""
    estimated = model(log_mel)[0].numpy()  # the inverter's own path
    f0, prob = model.estimate(log_mel)
    voiced = (prob > 0.5).to(log_mel.dtype)  # the voicing decision of model.forward
    oracle = model.vocoder(log_mel, torch.full_like(f0, f0_nominal), voiced, torch.zeros(1, dtype=torch.int64))[0].numpy()
    v = voiced[0].bool().numpy()
    off = float(np.median(np.abs(cents(f0[0].numpy()[v], f0_nominal)))) if v.any() else float("nan")
    return estimated, oracle, off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a source-filter vocoder checkpoint at the music geometry")
    parser.add_argument("--note-step", type=int, default=8, help="every k-th note from C2 (vocoders.py's --note-step)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained = load_trained(args.checkpoint)
    representation = registries().representation.build(MUSIC_MEL)
    gl100 = next(r for r in librosa_rows(representation, iterations=(100,)))
    items = [i for i in music_items("dev", args.note_step, 10**6) if i.subset == "notes"]
    herr = {"estimator": [], "oracle": [], "gl100": []}
    offsets = []
    for item in items:
        mel_power = np.exp(representation.analyze(item.audio).astype(np.float64))
        log_mel = trained.log_mel(mel_power[None])
        estimated, oracle, off = invert_both(trained.generator, log_mel, item.f0s_hz[0])
        offsets.append(off)
        for key, audio in (("estimator", estimated), ("oracle", oracle), ("gl100", gl100.invert(mel_power, len(item.audio)))):
            h = harmonic_error(item.audio, audio[: len(item.audio)], item.sr, list(item.f0s_hz))
            herr[key].append((h.sum_mean, h.mean))
    print(f"music dev split (FluidR3_GM), {len(items)} single notes; {args.checkpoint}\n")
    print("| F0 of the vocoder | notes H_err Σ5 | per partial | median cents off (voiced) | H_err / GL-100's |")
    print("| --- | ---: | ---: | ---: | ---: |")
    reference = np.mean([h[0] for h in herr["gl100"]])
    labels = {"estimator": "the estimator's (as inverted)", "oracle": "the nominal fundamental (oracle)",
              "gl100": "— (librosa mel_to_audio, GL-100)"}
    for key, label in labels.items():
        s, m = np.mean([h[0] for h in herr[key]]), np.mean([h[1] for h in herr[key]])
        off = f"{np.nanmedian(offsets):.1f}" if key == "estimator" else ("0" if key == "oracle" else "—")
        print(f"| {label} | {s:.3f} | {m:.3f} | {off} | {s / reference:.2f} |")


if __name__ == "__main__":
    main()
