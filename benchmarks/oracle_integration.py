"""Oracle phase integration: seed 002's §3.2 integrator and PGHI's heap fed the true gradient.

    .venv/bin/python benchmarks/oracle_integration.py [--root-step 12] [--seconds 10] [--rules]

"Oracle" inputs are the true magnitude, bin offsets and λ of real audio
(:func:`melforge.core.dsp.phase_targets.phase_targets`); each integrator's phase is combined with
the true magnitude, inverted and re-analysed, and the spectral convergence (SC, dB; linear
ratio in the last column against the same run's reference) measured against the true magnitude.
This is the ceiling a perfect network could reach with each integrator (the "oracle" row of
seed 002's Table 1, before the mel). Reference row: PGHI from the magnitude alone.

Audio (22,050 Hz, n_fft 1024, hop 256): N+C notes and chords (every ``--root-step``-th root, all
four sounds), Bach chorales on piano and ``gm_music`` pieces (first ``--seconds`` of each), and
Asterisk speech prompts. ``--rules`` also compares, on the N+C items, which bins may pass the
phase on in the §3.2 integrator (a slow Python heap; see ``core/dsp/phase_integration.py``):
the class of the receiving bin, of the sending bin, of both, or of either (melforge's choice).
"""

from __future__ import annotations

import argparse
import heapq
import time
from collections import defaultdict

import numpy as np

from melforge.core.metrics import spectral_convergence
from melforge.core.stft import StftParams, stft_magnitude
from melforge.core.dsp import stft_kernels as K
from melforge.inverters.pghi import pghi_phase
from melforge.core.dsp.phase_integration import integrate_phase, phase_increments
from melforge.core.dsp.phase_targets import phase_targets

SR = 22050
STFT = StftParams(SR, 1024, 256, 1024)
REFERENCE = "PGHI from |STFT| (reference)"


def clips(root_step: int, seconds: float) -> list[tuple[str, np.ndarray]]:
    """``(group, audio (samples,))`` pairs of every source."""
    from melforge.datasets.asterisk import AsteriskPrompts
    from melforge.datasets.gm_music import GMMusic
    from melforge.datasets.notes_chords import notes_chords
    from melforge.datasets.piano import BachChoralesPiano

    out = [(f"N+C {i.subset}", i.audio) for i in notes_chords(SR, root_step=root_step) if i.subset != "octaves"]
    out += [("piano chorales", c.audio) for c in BachChoralesPiano(chorales=3, seconds=seconds).clips(SR)]
    out += [("gm_music", c.audio) for c in GMMusic(pieces=6, seconds=seconds).clips(SR)]
    speech = [c.audio for c in AsteriskPrompts(languages=("en",)).clips(SR) if len(c.audio) >= 2 * SR]
    out += [("speech", a) for a in speech[:6]]
    return out


def sc_of(magnitude: np.ndarray, phase: np.ndarray, length: int) -> float:
    y = K.istft((magnitude * np.exp(1j * phase)).astype(np.complex64), STFT, length)
    return spectral_convergence(magnitude, stft_magnitude(y, STFT))


def rule_variant(tg, rule: str) -> np.ndarray:
    """§3.2 integration in plain Python (trapezoid steps, random restarts, 1e-5 floor) where the
    phase passes between neighbours ``a → b`` along time if ``rule`` holds for their λ > 0.5
    ("target": b, "source": a, "both", "either") and along frequency likewise for λ < 0.4."""
    mag, lam = tg.magnitude, tg.lam
    n_frames, n_bins = mag.shape
    ts, fs = phase_increments(tg.dm, tg.dn, STFT)
    phase = 2 * np.pi * np.random.default_rng(0).random(mag.shape)
    done = mag < 1e-5 * mag.max()
    pick = {"target": lambda a, b: b, "source": lambda a, b: a, "both": lambda a, b: a and b, "either": lambda a, b: a or b}[rule]
    count = 0
    for s in np.argsort(-mag.ravel(), kind="stable"):
        s = divmod(int(s), n_bins)
        if done[s]:
            continue
        done[s] = True
        heap = [(-mag[s], 0, s)]
        while heap:
            _, _, (t, f) = heapq.heappop(heap)
            for dt, df in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                u, g = t + dt, f + df
                if not (0 <= u < n_frames and 0 <= g < n_bins) or done[u, g]:
                    continue
                if dt and not pick(lam[t, f] > 0.5, lam[u, g] > 0.5):
                    continue
                if df and not pick(lam[t, f] < 0.4, lam[u, g] < 0.4):
                    continue
                step = ts if dt else fs
                phase[u, g] = phase[t, f] + (dt + df) * 0.5 * (step[t, f] + step[u, g])
                done[u, g] = True
                count += 1
                heapq.heappush(heap, (-mag[u, g], -count, (u, g)))
    return phase - np.pi * np.arange(n_bins)[None, :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root-step", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rules", action="store_true")
    args = ap.parse_args()

    methods = {
        REFERENCE: lambda tg: pghi_phase(tg.magnitude, STFT),
        "pg §3.2 (trapezoid steps)": lambda tg: integrate_phase(tg.magnitude, tg.dm, tg.dn, tg.lam, STFT, method="pg"),
        "pg §3.2 (eq. 3/4 steps)": lambda tg: integrate_phase(tg.magnitude, tg.dm, tg.dn, tg.lam, STFT, method="pg", step="euler"),
        "pghi heap fed the true gradient": lambda tg: integrate_phase(tg.magnitude, tg.dm, tg.dn, None, STFT, method="pghi"),
        "random phase": lambda tg: 2 * np.pi * np.random.default_rng(0).random(tg.magnitude.shape),
    }
    data = clips(args.root_step, args.seconds)
    sc = defaultdict(lambda: defaultdict(list))  # method → group → [SC linear]
    seconds = defaultdict(float)
    audio_seconds = sum(len(a) for _, a in data) / SR
    groups = list(dict.fromkeys(g for g, _ in data))
    for name, fn in methods.items():  # warm-up (Numba compile) on the first clip
        fn(phase_targets(data[0][1], STFT))
    for group, audio in data:
        tg = phase_targets(audio, STFT)
        for name, fn in methods.items():
            t0 = time.perf_counter()
            phase = fn(tg)
            seconds[name] += time.perf_counter() - t0
            sc[name][group].append(sc_of(tg.magnitude, phase, len(audio)))
        if args.rules and group.startswith("N+C"):
            for rule in ("target", "source", "both", "either"):
                sc[f"rules: {rule}"][group].append(sc_of(tg.magnitude, rule_variant(tg, rule), len(audio)))

    counts = {g: sum(1 for gg, _ in data if gg == g) for g in groups}
    print(f"{len(data)} clips, {audio_seconds:.0f} s of audio; SC in dB (mean of linear SC per group); "
          f"items per group: {counts}\n")  # fmt: skip
    print("| integrator | " + " | ".join(groups) + " | ms per audio second | mean SC / reference's |")
    print("| --- |" + " ---: |" * (len(groups) + 2))
    ref = np.mean([np.mean(sc[REFERENCE][g]) for g in groups])
    for name, per_group in sc.items():
        present = [g for g in groups if per_group.get(g)]
        cells = [f"{20 * np.log10(np.mean(per_group[g])):.1f}" if g in present else "—" for g in groups]
        timing = f"{1e3 * seconds[name] / audio_seconds:.2f}" if name in seconds else "(Python)"
        ratio = np.mean([np.mean(per_group[g]) for g in present]) / np.mean([np.mean(sc[REFERENCE][g]) for g in present])
        note = "" if len(present) == len(groups) else " (N+C)"
        print(f"| {name} | " + " | ".join(cells) + f" | {timing} | {ratio:.2f}×{note} |")

if __name__ == "__main__":
    main()
