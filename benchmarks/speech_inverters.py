"""Inverters on speech at the speech mel geometry (issue 20, item 5): which inverter for speech.

    .venv/bin/python benchmarks/speech_inverters.py [--clips 8] [--vocoder runs/pg_vocoder_speech_tiny/<date>/checkpoints/last.pt]

Clips: the first ``--clips`` English Asterisk prompts of at least 2 s that fall in the validation
split of ``pg_vocoder_speech_tiny`` (never trained on), each analysed with the speech geometry's
log-mel (16 kHz, n_fft 1024, hop 256, 64 mels up to 8 kHz) and inverted from that mel by each
inverter through ``melforge-invert``'s own path (``inversion_parts``, ``invert_features``). Per
inverter: SC and LSD (dB, against the clip's true STFT magnitude; mean over clips) and × real
time (total audio seconds over total inversion seconds, one process, after one warm-up clip).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

SPEECH_MEL = {"name": "log_mel", "sr": 16000, "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 64,
              "fmin": 0.0, "fmax": 8000.0, "floor": 1.0e-5}


def clips(count: int) -> list[np.ndarray]:
    """``count`` validation prompts of at least 2 s, ``(samples,)`` float32 at 16 kHz."""
    from melforge.core.features import in_valid_split
    from melforge.datasets.asterisk import AsteriskPrompts

    found = []
    for clip in AsteriskPrompts(languages=["en"]).clips(16000):
        if len(clip.audio) >= 2 * 16000 and in_valid_split(clip.id, 0.05):
            found.append(clip.audio)
            if len(found) == count:
                break
    return found


def inverters(vocoder: str | None) -> list[tuple[str, dict]]:
    """``(label, inverter config)`` of every row."""
    rows = [("griffin_lim (32 fast iterations)", {"name": "griffin_lim"}),
            ("pghi", {"name": "pghi"}),
            ("gradient (PGHI → GL 50 → L-BFGS 50)", {"name": "gradient"})]
    if vocoder:
        rows.append(("pg_vocoder (pg_vocoder_speech_tiny)", {"name": "pg_vocoder", "checkpoint": vocoder}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--vocoder", default=None, help="a pg_vocoder_speech_tiny checkpoint")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch
    import yaml

    from melforge.core import metrics
    from melforge.core.config_options import config_dirs
    from melforge.core.inversion import invert_features, inversion_parts

    torch.set_num_threads(args.threads)
    audio = clips(args.clips)
    print("| inverter (from the speech log-mel) | SC (dB) | LSD (dB) | × real time |", file=sys.stdout)
    print("| --- | ---: | ---: | ---: |")
    for label, inv in inverters(args.vocoder):
        cfg_file = config_dirs()[0] / "inverter" / f"{inv['name']}.yaml"  # the group's defaults
        cfg = {**yaml.safe_load(cfg_file.read_text()), **inv}
        representation, inverter = inversion_parts({"representation": SPEECH_MEL, "inverter": cfg})
        stft = representation.stft
        invert_features(representation, inverter, representation.analyze(audio[0]), length=len(audio[0]))  # warm-up
        sc, lsd, seconds, total = [], [], 0.0, 0
        for x in audio:
            features = representation.analyze(x)
            start = time.perf_counter()
            y = invert_features(representation, inverter, features, length=len(x))
            seconds += time.perf_counter() - start
            total += len(x)
            target, estimate = metrics.stft_magnitude(x, stft), metrics.stft_magnitude(y, stft)
            sc.append(metrics.spectral_convergence_db(target, estimate))
            lsd.append(metrics.log_spectral_distance(target, estimate))
        print(f"| {label} | {np.mean(sc):.3f} | {np.mean(lsd):.3f} | {total / 16000 / seconds:.1f} |", flush=True)
    load = os.getloadavg()
    print(f"\n{len(audio)} clips, {sum(map(len, audio)) / 16000:.1f} s of speech; {args.threads} torch thread(s); "
          f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.")


if __name__ == "__main__":
    main()
