"""Seed 002's Table 1 rebuilt on the N+C set (issue 11): mel → audio with classical inverters,
the trained phase-gradient vocoder (``pg_vocoder``, both integrators) and the oracle.

    .venv/bin/python benchmarks/vocoders.py --checkpoint runs/pg_vocoder_tiny/<date>/checkpoints/last.pt \
        [--note-step 3] [--chord-step 12] [--out table.md] [--figures benchmarks/figures]

Every item of the N+C set (``melforge.datasets.notes_chords``: one-second notes C2-C7 and six
chord types on Rhodes, church organ, string ensemble and nylon guitar, §4.2) is analysed with the
checkpoint's representation (22,050 Hz, n_fft 1024, hop 256, 80 mels for the CPU twin) and
inverted from its mel power by every row:

- ``griffin-lim 500``: the paper's baseline, 500 iterations of classic Griffin-Lim (momentum 0)
  from the warped mel (melforge's NNLS mel → linear magnitude);
- ``fast griffin-lim 32``: melforge's ``griffin_lim`` inverter (momentum 0.99, mel target);
- ``pghi`` and ``pghi → griffin-lim 32``: PGHI on the NNLS magnitude, alone and refined;
- ``gradient``: melforge's ``gradient`` inverter as configured (PGHI → fast GL 50 → L-BFGS 50 on
  the mel), our best classical inverter from the mel;
- ``pg_vocoder (pg)``, ``pg_vocoder (pghi)``: the trained network, then our interpretation of
  seed 002's integrator (§3.2) or PGHI's heap fed the predicted gradient; the same two with ``refine_partials``: the
  predicted partial frequencies refined against the input mel first
  (:mod:`melforge.plugins.pg_vocoder.partial_refinement`, not in seed 002); with ``harmonic_prior``,
  alone and with the refinement: harmonic combs fitted to the bands below 1 kHz rewrite those
  bins where they fit (:mod:`melforge.plugins.pg_vocoder.harmonic_fit`, not in seed 002);
- ``oracle (pg)``, ``oracle (pghi)``: the true magnitude, offsets and λ of the original audio
  (``melforge.core.dsp.phase_targets``) through each integrator.

Columns: H_err (seed 002 eq. 13, semitones; 4096/256 analysis) mean and max over the Notes and
the Chords subsets, both as the paper's sum over the five partials and as the per-partial mean;
the ratio of mean H_err (sum) to the same run's griffin-lim 500 row; SC (dB) and LSD (dB) against
the original's STFT magnitude; the real-time factor (audio seconds per wall second of the
inversion alone, single thread: network + integration + ISTFT for the vocoder); parameters.
``--figures`` writes H_err against pitch (Fig. 4a) and against chord type (Fig. 4b); ``--swap``
runs only the swap test (:func:`swap_test`: which of the predictions limits H_err); ``--variants``
only the alternatives tried for the offsets, per pitch (:func:`variants_test`); ``--registers`` only
the notes' H_err per instrument and register with and without the refinement and the harmonic
prior (:func:`registers_test`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def _rows(vocoder_checkpoint: str, representation, stft):
    """``{label: (invert(mel_power) -> audio, parameters)}`` for every row but the oracles."""
    from melforge.core.mel_inversion import nnls_magnitude
    from melforge.core.plugins import registries
    from melforge.inverters.griffin_lim import GriffinLim

    regs = registries()
    basis = representation.mel_basis.astype(np.float64)

    def via(cfg):
        inverter = regs.inverter.build(cfg)
        return lambda mel, length: inverter.invert_mel(mel, basis, stft, length=length)

    gl500 = GriffinLim(500, momentum=0.0, init="random", seed=0)
    rows = {
        "griffin-lim 500 (warped mel)": (lambda mel, length: gl500.invert(nnls_magnitude(mel, basis), stft, length=length), 0),
        "fast griffin-lim 32 (mel target)": (via({"name": "griffin_lim", "n_iter": 32}), 0),
        "pghi (warped mel)": (via({"name": "pghi"}), 0),
        "pghi → griffin-lim 32": (via({"name": "pghi", "refine": "griffin_lim", "refine_iters": 32}), 0),
        "gradient (pghi → GL 50 → L-BFGS 50 on the mel)": (via({"name": "gradient"}), 0),
    }
    additions = {(False, False): "", (True, False): ", partials refined on the mel",
                 (False, True): ", harmonic prior below 1 kHz",
                 (True, True): ", harmonic prior below 1 kHz, partials refined on the mel"}
    for (refine, harmonic), suffix in additions.items():
        for method in ("pg", "pghi"):
            vocoder = regs.inverter.build({"name": "pg_vocoder", "checkpoint": vocoder_checkpoint, "integrator": method,
                                           "refine_partials": refine, "harmonic_prior": harmonic})
            params = vocoder.trained.network.parameter_count()
            label = f"pg_vocoder ({method} integrator{suffix})"
            rows[label] = ((lambda v: lambda mel, length: v.invert_mel(mel, basis, stft, length=length))(vocoder), params)
    return rows


def _synthesise(magnitude, dm, dn, lam, stft, length: int, method: str = "pg") -> np.ndarray:
    """Magnitude and phase gradient ``(frames, bins)`` → phase integration (§3.2) → ISTFT:
    ``(length,)`` audio."""
    from melforge.core.dsp import stft_kernels as K
    from melforge.core.dsp.phase_integration import integrate_phase

    phase = integrate_phase(magnitude, dm, dn, lam, stft, method=method)
    return K.istft(K.polar(magnitude, phase, np.empty(phase.shape, dtype=np.complex64)), stft, length)


def _oracle(audio: np.ndarray, stft, method: str) -> np.ndarray:
    from melforge.core.dsp.phase_targets import phase_targets

    t = phase_targets(audio, stft)
    return _synthesise(t.magnitude, t.dm, t.dn, t.lam, stft, len(audio), method)


def run(checkpoint: str, note_step: int, chord_step: int, limit: int | None) -> tuple[dict, dict, list]:
    """Invert every item with every row. Returns ``(per-row metrics lists, row parameters, items)``."""
    import torch

    from melforge.core import metrics
    from melforge.core.plugins import registries
    from melforge.datasets.notes_chords import CHORDS, notes_chords

    torch.set_num_threads(1)
    regs = registries()
    probe = regs.inverter.build({"name": "pg_vocoder", "checkpoint": checkpoint})
    representation = regs.representation.build(probe.representation_config())
    stft = representation.stft
    rows = _rows(checkpoint, representation, stft)
    oracles = {f"oracle ({m} integrator)": m for m in ("pg", "pghi")}
    items = notes_chords(stft.sr, chords=["note"], root_step=note_step)
    items += notes_chords(stft.sr, chords=[c for c in CHORDS if c != "note"], root_step=chord_step)
    items = items[:limit] if limit else items
    # warm-up: Numba compilation and first calls out of the timings
    warm = items[0].audio
    mel0 = np.exp(representation.analyze(warm).astype(np.float64))
    for fn, _ in rows.values():
        fn(mel0, len(warm))
    for m in oracles.values():
        _oracle(warm, stft, m)
    results: dict[str, list[dict]] = defaultdict(list)
    for k, item in enumerate(items):
        audio = item.audio.astype(np.float32)
        mel = np.exp(representation.analyze(audio).astype(np.float64))  # (frames, n_mels) mel power
        target = metrics.stft_magnitude(audio, stft)
        outputs = {}
        for label, (fn, _) in rows.items():
            start = time.perf_counter()
            outputs[label] = (fn(mel, len(audio)), time.perf_counter() - start)
        for label, m in oracles.items():
            start = time.perf_counter()
            outputs[label] = (_oracle(audio, stft, m), time.perf_counter() - start)
        for label, (out, seconds) in outputs.items():
            herr = item_herr(audio, out, stft.sr, item.f0s_hz)
            est = metrics.stft_magnitude(out, stft)
            results[label].append({
                "item": item, "seconds": seconds, "samples": len(audio),
                "sc_db": metrics.spectral_convergence_db(target, est), "lsd_db": metrics.log_spectral_distance(target, est),
                **herr,
            })
        if (k + 1) % 20 == 0:
            print(f"{k + 1}/{len(items)} items", file=sys.stderr, flush=True)
    params = {label: p for label, (_, p) in rows.items()}
    params.update({label: 0 for label in oracles})
    return results, params, items


def item_herr(reference: np.ndarray, estimate: np.ndarray, sr: int, f0s) -> dict:
    """H_err of one item (:func:`melforge.core.metrics.harmonic_error`, semitones): the paper's
    sum over the five partials (eq. 13 text; ``herr_sum_mean``, ``herr_sum_max``) and the
    per-partial error (``herr_mean_mean``, ``herr_mean_max``), mean and max over notes and frames."""
    from melforge.core.metrics import harmonic_error

    h = harmonic_error(reference, estimate, sr, list(f0s))
    return {"herr_sum_mean": h.sum_mean, "herr_sum_max": h.sum_max, "herr_mean_mean": h.mean, "herr_mean_max": h.max}


def table(results: dict, params: dict) -> str:
    """The markdown table of Table 1's columns (see the module docstring)."""
    ref_label = "griffin-lim 500 (warped mel)"

    def agg(label, subset, key, how):
        vals = [r[key] for r in results[label] if r["item"].subset == subset]
        return (np.mean if how == "mean" else np.max)(vals) if vals else float("nan")

    ref = {s: agg(ref_label, s, "herr_sum_mean", "mean") for s in ("notes", "chords")}
    head = ("| inverter (from an 80-band mel) | Notes H_err Σ5 mean / max | Notes per-partial mean / max | "
            "Chords H_err Σ5 mean / max | Chords per-partial mean / max | Notes / Chords Σ5 mean vs GL-500 | "
            "SC (dB) | LSD (dB) | RTF (× real time) | parameters |")
    lines = [head, "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for label, rs in results.items():
        cells = [label]
        for subset in ("notes", "chords"):
            cells.append(f"{agg(label, subset, 'herr_sum_mean', 'mean'):.3f} / {agg(label, subset, 'herr_sum_max', 'max'):.2f}")
            cells.append(f"{agg(label, subset, 'herr_mean_mean', 'mean'):.3f} / {agg(label, subset, 'herr_mean_max', 'max'):.2f}")
        cells.append(" / ".join(f"{agg(label, s, 'herr_sum_mean', 'mean') / ref[s]:.2f}×" for s in ("notes", "chords")))
        cells.append(f"{np.mean([r['sc_db'] for r in rs]):.2f}")
        cells.append(f"{np.mean([r['lsd_db'] for r in rs]):.2f}")
        rtf = sum(r["samples"] for r in rs) / results_sr(rs) / max(sum(r["seconds"] for r in rs), 1e-9)
        cells.append(f"{rtf:.1f}")
        cells.append(f"{params[label]:,}" if params[label] else "0")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_sr(rs: list) -> int:
    return int(rs[0]["item"].sr)


def figures(results: dict, folder: Path) -> list[Path]:
    """``vocoders_pitch.png`` (Fig. 4a: mean H_err Σ5 of the notes against MIDI pitch, over the
    instruments) and ``vocoders_chords.png`` (Fig. 4b: mean H_err Σ5 per chord type)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    colours = plt.get_cmap("tab20").colors  # one colour per row (tab10 repeats after ten)
    for i, (label, rs) in enumerate(results.items()):
        by_pitch = defaultdict(list)
        for r in rs:
            if r["item"].subset == "notes":
                by_pitch[min(r["item"].midi)].append(r["herr_sum_mean"])
        pitches = sorted(by_pitch)
        ax.plot(pitches, [np.mean(by_pitch[p]) for p in pitches], marker="o", ms=3, label=label,
                color=colours[(2 * i) % 20 + (2 * i) // 20], linestyle="--" if label.startswith("oracle") else "-")
    ax.set_xlabel("MIDI pitch (36 = C2, 96 = C7)")
    ax.set_ylabel("mean H_err, sum over 5 partials (semitones)")
    ax.set_yscale("log")
    ax.set_title("Notes: H_err against pitch (seed 002 Fig. 4a), mean over 4 instruments")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below the axes
    fig.tight_layout()
    pitch_png = folder / "vocoders_pitch.png"
    fig.savefig(pitch_png, dpi=110)
    plt.close(fig)

    from melforge.datasets.notes_chords import CHORDS

    kinds = [k for k in CHORDS if any(r["item"].chord == k for rs in results.values() for r in rs)]
    fig, ax = plt.subplots(figsize=(10, 6))
    width = 0.8 / max(len(results), 1)
    for i, (label, rs) in enumerate(results.items()):
        vals = [np.mean([r["herr_sum_mean"] for r in rs if r["item"].chord == k] or [np.nan]) for k in kinds]
        ax.bar(np.arange(len(kinds)) + i * width, vals, width, label=label, color=plt.get_cmap("tab20").colors[(2 * i) % 20 + (2 * i) // 20])
    ax.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds, rotation=15, fontsize=8)
    ax.set_ylabel("mean H_err, sum over 5 partials (semitones)")
    ax.set_yscale("log")
    ax.set_title("H_err against chord type (seed 002 Fig. 4b)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    chord_png = folder / "vocoders_chords.png"
    fig.savefig(chord_png, dpi=110)
    plt.close(fig)
    return [pitch_png, chord_png]


def swap_test(checkpoint: str, note_step: int, chord_step: int) -> str:
    """Which prediction limits H_err: the vocoder's magnitude, offsets and λ, each swapped for the
    true ones, and the vocoder with its partials refined on the mel, through the ``pg`` integrator
    (mean H_err Σ5 on Notes and Chords); and the power-weighted RMS error of the network's and of
    the refined Δm on the notes' sinusoidal bins (λ > 0.5), in bins, below C3 and from C3 up.
    Returns a markdown table."""
    import torch

    from melforge.core.metrics import harmonic_error
    from melforge.core.plugins import registries
    from melforge.datasets.notes_chords import CHORDS, notes_chords
    from melforge.core.dsp.phase_targets import phase_targets

    torch.set_num_threads(1)
    regs = registries()
    vocoder = regs.inverter.build({"name": "pg_vocoder", "checkpoint": checkpoint})
    representation = regs.representation.build(vocoder.representation_config())
    stft = representation.stft
    items = notes_chords(stft.sr, chords=["note"], root_step=note_step)
    items += notes_chords(stft.sr, chords=[c for c in CHORDS if c != "note"], root_step=chord_step)
    variants = ("predicted magnitude, offsets and λ (the vocoder)", "the vocoder, partials refined on the mel",
                "predicted magnitude, true offsets and λ",
                "true magnitude, predicted offsets and λ", "true magnitude, offsets and λ (oracle)")
    herr = {v: {"notes": [], "chords": []} for v in variants}
    dm_err = defaultdict(list)
    for item in (i for i in items if i.subset in ("notes", "chords")):
        audio = item.audio
        mel_power = np.exp(representation.analyze(audio).astype(np.float64))
        p = vocoder.predict(mel_power, refine=False)
        t = phase_targets(audio, stft)
        pred, true = (p["magnitude"], p["dm"], p["dn"], p["lam"]), (t.magnitude, t.dm, t.dn, t.lam)
        refined = vocoder.predict(mel_power, refine=True)
        fitted = (refined["magnitude"], refined["dm"], refined["dn"], refined["lam"])
        for v, (mag, dm, dn, lam) in zip(variants, (pred, fitted, pred[:1] + true[1:], true[:1] + pred[1:], true)):
            out = _synthesise(mag, dm, dn, lam, stft, len(audio))
            herr[v][item.subset].append(harmonic_error(audio, out, stft.sr, list(item.f0s_hz)).sum_mean)
        if item.subset == "notes":
            w = t.magnitude**2 * (t.lam > 0.5)
            for key, est in (("network", p["dm"]), ("refined", refined["dm"])):
                dm_err[key, "below C3" if item.midi[0] < 48 else "C3 and above"].append(
                    float(np.sqrt((w * (est - t.dm) ** 2).sum() / w.sum())))
    lines = ["| variant (pg integrator) | Notes H_err Σ5 mean | Chords H_err Σ5 mean |", "| --- | ---: | ---: |"]
    lines += [f"| {v} | {np.mean(h['notes']):.3f} | {np.mean(h['chords']):.3f} |" for v, h in herr.items()]
    lines.append("")
    lines.append("power-weighted RMS error of the predicted Δm on the notes' sinusoidal bins: "
                 + ", ".join(f"{k[0]} {k[1]} {np.mean(v):.3f} bins" for k, v in dm_err.items()))
    return "\n".join(lines)


def variants_test(checkpoint: str, note_step: int, chord_step: int) -> str:
    """The alternatives tried for the vocoder's frequency offsets, through the ``pg`` integrator:
    the network's Δm; refined on the mel (:mod:`melforge.plugins.pg_vocoder.partial_refinement`, two
    sweeps, and one); λ̂ from eq. 12 of the predicted offsets instead of the λ channel (with and
    without refinement); Griffin-Lim 500 for the ratio. Mean H_err Σ5 over Notes and Chords, and
    per pitch (Notes) and per root (Chords), as a markdown table."""
    import torch

    from melforge.core.mel_inversion import nnls_magnitude
    from melforge.core.metrics import harmonic_error
    from melforge.core.plugins import registries
    from melforge.datasets.notes_chords import CHORDS, notes_chords
    from melforge.inverters.griffin_lim import GriffinLim
    from melforge.plugins.pg_vocoder.partial_refinement import refine_frequency_offsets
    from melforge.core.dsp.phase_targets import classification

    torch.set_num_threads(1)
    regs = registries()
    vocoder = regs.inverter.build({"name": "pg_vocoder", "checkpoint": checkpoint})
    representation = regs.representation.build(vocoder.representation_config())
    stft, basis = representation.stft, representation.mel_basis.astype(np.float64)
    items = notes_chords(stft.sr, chords=["note"], root_step=note_step)
    items += notes_chords(stft.sr, chords=[c for c in CHORDS if c not in ("note", "octave")], root_step=chord_step)
    gl500 = GriffinLim(500, momentum=0.0, init="random", seed=0)
    herr: dict = defaultdict(lambda: defaultdict(list))  # variant -> (subset, lowest midi) -> values
    for item in items:
        audio = item.audio
        mel = np.exp(representation.analyze(audio).astype(np.float64))
        p = vocoder.predict(mel, refine=False)
        mag = p["magnitude"]
        refined = refine_frequency_offsets(mel, basis, mag, p["dm"], p["lam"], stft)
        one_sweep = refine_frequency_offsets(mel, basis, mag, p["dm"], p["lam"], stft, sweeps=1)
        runs = {
            "network Δm, λ channel (pg_vocoder)": (p["dm"], p["lam"]),
            "refined Δm (2 sweeps), λ channel": (refined, p["lam"]),
            "refined Δm (1 sweep), λ channel": (one_sweep, p["lam"]),
            "network Δm, λ̂ = eq. 12 of the predicted offsets": (p["dm"], classification(p["dm"], p["dn"])),
            "refined Δm (2 sweeps), λ̂ = eq. 12": (refined, classification(refined, p["dn"])),
        }
        outputs = {"griffin-lim 500 (warped mel)": gl500.invert(nnls_magnitude(mel, basis), stft, length=len(audio))}
        for label, (dm, lam) in runs.items():
            outputs[label] = _synthesise(mag, dm, p["dn"], lam, stft, len(audio))
        for label, out in outputs.items():
            herr[label][item.subset, min(item.midi)].append(harmonic_error(audio, out, stft.sr, list(item.f0s_hz)).sum_mean)
    keys = sorted(next(iter(herr.values())), key=lambda k: (k[0] != "notes", k[1]))
    head = "| variant (pg integrator) | Notes | Chords | " + " | ".join(f"{s[0].upper()}{m}" for s, m in keys) + " |"
    lines = [head, "| --- " * (3 + len(keys)) + "|"]
    for label, by in herr.items():
        means = [np.mean([v for (s, _), vs in by.items() if s == subset for v in vs]) for subset in ("notes", "chords")]
        lines.append(f"| {label} | {means[0]:.3f} | {means[1]:.3f} | " + " | ".join(f"{np.mean(by[k]):.2f}" for k in keys) + " |")
    return ("Columns N<midi> / C<midi>: mean H_err Σ5 of the notes at that MIDI pitch / the chords on that root.\n\n"
            + "\n".join(lines))


def registers_test(checkpoint: str, note_step: int) -> str:
    """Mean H_err Σ5 of the notes per instrument, below C3 and from C3 up, for the vocoder's
    network alone, the refinement, the harmonic prior, and both (``pg`` integrator), as a
    markdown table: where each addition to seed 002 helps."""
    import torch

    from melforge.core.metrics import harmonic_error
    from melforge.core.plugins import registries
    from melforge.datasets.notes_chords import INSTRUMENTS, notes_chords

    torch.set_num_threads(1)
    regs = registries()
    vocoder = regs.inverter.build({"name": "pg_vocoder", "checkpoint": checkpoint})
    representation = regs.representation.build(vocoder.representation_config())
    stft = representation.stft
    variants = {"network": (False, False), "partials refined": (True, False), "harmonic prior": (False, True),
                "harmonic prior, partials refined": (True, True)}
    herr: dict = defaultdict(list)  # (variant, instrument, below C3) -> values
    for item in notes_chords(stft.sr, chords=["note"], root_step=note_step):
        mel = np.exp(representation.analyze(item.audio).astype(np.float64))
        for label, (refine, harmonic) in variants.items():
            p = vocoder.predict(mel, refine=refine, harmonic=harmonic)
            out = _synthesise(p["magnitude"], p["dm"], p["dn"], p["lam"], stft, len(item.audio))
            herr[label, item.instrument, item.midi[0] < 48].append(harmonic_error(item.audio, out, stft.sr, list(item.hz)).sum_mean)
    lines = ["| variant (pg integrator) | register | " + " | ".join(INSTRUMENTS) + " | all |", "| --- " * (3 + len(INSTRUMENTS)) + "|"]
    for low in (True, False):
        for label in variants:
            every = [v for inst in INSTRUMENTS for v in herr[label, inst, low]]
            lines.append(f"| {label} | {'C2–B2' if low else 'C3–C7'} | "
                         + " | ".join(f"{np.mean(herr[label, inst, low]):.2f}" for inst in INSTRUMENTS) + f" | {np.mean(every):.3f} |")
    return "Mean H_err Σ5 (semitones) of the notes, per instrument and register.\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a pg_vocoder checkpoint (melforge-train experiment=pg_vocoder_tiny)")
    parser.add_argument("--note-step", type=int, default=3, help="every n-th semitone of the notes, from C2")
    parser.add_argument("--chord-step", type=int, default=12, help="every n-th semitone of the chord roots, from C2")
    parser.add_argument("--limit", type=int, default=None, help="at most this many items (a quick check)")
    parser.add_argument("--out", default=None, help="also write the table (markdown) here")
    parser.add_argument("--figures", default=None, help="folder for vocoders_pitch.png and vocoders_chords.png")
    parser.add_argument("--swap", action="store_true", help="only the swap test (which prediction limits H_err)")
    parser.add_argument("--variants", action="store_true",
                        help="only the alternatives for the offsets (refinement sweeps, λ̂ from eq. 12), per pitch")
    parser.add_argument("--registers", action="store_true",
                        help="only the notes' H_err per instrument and register with and without the additions to seed 002")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.registers:
        print(registers_test(args.checkpoint, args.note_step))
        return
    if args.swap:
        print(swap_test(args.checkpoint, args.note_step, args.chord_step))
        return
    if args.variants:
        print(variants_test(args.checkpoint, args.note_step, args.chord_step))
        return
    start = time.perf_counter()
    load = os.getloadavg()[0]
    results, params, items = run(args.checkpoint, args.note_step, args.chord_step, args.limit)
    count = {s: sum(it.subset == s for it in items) for s in ("notes", "chords", "octaves")}
    text = (f"{len(items)} N+C items ({count['notes']} notes, {count['chords']} chords, {count['octaves']} octaves "
            "(in Fig. 4b only)), load average "
            f"{load:.2f} → {os.getloadavg()[0]:.2f}, {time.perf_counter() - start:.0f} s\n\n" + table(results, params))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.figures:
        for path in figures(results, Path(args.figures)):
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
