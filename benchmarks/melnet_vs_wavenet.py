"""MelNet against the WaveNet baseline on the same data with the same wall-clock training budget
(seed 000 §6.4 compares them by human judgement; this compares what a CPU run gives).

Trains nothing itself: give it the run directories of two ``melforge-train`` runs made with the
same ``train.max_seconds`` (ideally side by side, so that both see the same machine load), e.g.::

    melforge-train train.max_steps=100000 train.max_seconds=360 threads=1 hydra.run.dir=runs/compare/melnet &
    melforge-train experiment=wavenet_speech_tiny train.max_steps=100000 train.max_seconds=360 threads=1 \\
        sample.frames=32768 hydra.run.dir=runs/compare/wavenet &
    wait
    python benchmarks/melnet_vs_wavenet.py runs/compare/melnet runs/compare/wavenet

Prints a table (steps, training seconds, valid NLL, sampler, generation time and real-time
factor) and writes ``benchmarks/figures/melnet_vs_wavenet.png``: the log-mel spectrogram of each
model's first sample and of a real validation-set prompt, on one colour scale (dB), all analysed
with the same 80-band mel filterbank, so the comparison is of the audio, not of the features.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
N_FFT, HOP, N_MELS = 1024, 256, 80


def log_mel_db(audio: np.ndarray, sr: int) -> np.ndarray:
    """``(samples,)`` → ``(n_mels, frames)`` mel power in dB (re 1.0, floor -100 dB)."""
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    return 10 * np.log10(np.maximum(mel, 1e-10))


def summary(run: Path) -> dict:
    """What the table shows of one run (from its ``metrics.json``)."""
    m = json.loads((run / "metrics.json").read_text())
    sample = m["samples"][0]
    audio, sr = sf.read(sample["wav"])
    return {
        "run": run, "steps": m["steps"], "train_s": m["train_seconds_this_run"],
        "nll0": m["valid_nll_step0"], "nll": m["valid_nll"], "sampler": m["samplers"][0],
        "gen_s": sample["seconds"], "audio_s": len(audio) / sr, "audio": audio, "sr": sr, "wav": sample["wav"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("melnet", type=Path)
    parser.add_argument("wavenet", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/figures/melnet_vs_wavenet.png")
    args = parser.parse_args()
    rows = {"MelNet (speech_tiny)": summary(args.melnet), "WaveNet (wavenet_speech_tiny)": summary(args.wavenet)}
    print("| model | steps | training (s) | valid NLL, step 0 → end | sampler | audio (s) | generation (s) | real-time factor |")
    print("|---|---:|---:|---|---|---:|---:|---:|")
    for name, r in rows.items():
        unit = "nats/sample" if "WaveNet" in name else "nats/element"
        print(f"| {name} | {r['steps']} | {r['train_s']:.0f} | {r['nll0']:.3f} → {r['nll']:.3f} {unit} | {r['sampler']} | "
              f"{r['audio_s']:.2f} | {r['gen_s']:.2f} | {r['audio_s'] / r['gen_s']:.1f}x |")

    from melforge.datasets.asterisk import AsteriskPrompts
    from melforge.core.features import in_valid_split

    sr = rows["MelNet (speech_tiny)"]["sr"]
    real = next(c for c in AsteriskPrompts(languages=("en",)).clips(sr) if in_valid_split(c.id, 0.05) and len(c.audio) >= 2 * sr)
    panels = {"real prompt (validation set)": (real.audio[: int(2.05 * sr)], sr)}
    panels.update({f"{name}\n{r['steps']} steps in {r['train_s']:.0f} s": (r["audio"], r["sr"]) for name, r in rows.items()})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {k: log_mel_db(a.astype(np.float32), s) for k, (a, s) in panels.items()}
    top = max(float(im.max()) for im in images.values())
    fig, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 3.4), constrained_layout=True)
    for ax, (title, im) in zip(axes, images.items()):
        shown = ax.imshow(im, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                          extent=(0, im.shape[1] * HOP / sr, 0, N_MELS))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("mel band")
    fig.colorbar(shown, ax=axes, label="mel power (dB)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
