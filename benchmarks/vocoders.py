"""One vocoder benchmark with a clean test set (issue 18): every inverter of the registry,
classical and learned, and librosa's baselines, from the mel to audio.

    .venv/bin/python benchmarks/vocoders.py --split dev|test \\
        [--vocoder NAME:CHECKPOINT ...] [--domains speech,music] [--speech-clips 24] \\
        [--note-step 4] [--chord-step 12] [--rtf-items 4] [--batching] [--listen DIR] \\
        [--melnet-sample SAMPLE.npy] [--out table.md]

Splits (``benchmarks/vocoder_sets.py``): speech ``test`` is a speaker no twin trains on (Asterisk
``it``), music ``test`` the N+C notes and chords rendered with a soundfont no training data uses
(TimGM6mb); ``dev`` (training speakers' validation prompts, N+C on FluidR3_GM) is where every
choice is made (checkpoints, the best GAN twin). Run ``--split test`` once per reported row.

Rows (``benchmarks/vocoder_rows.py``): ``librosa mel_to_audio`` with 32, 100 and 500 iterations
(the 500 one is seed 002's fast Griffin-Lim baseline on the warped mel), melforge's
``griffin_lim``, ``pghi`` and ``gradient`` at their defaults, and one row per ``--vocoder`` whose
mel geometry is the domain's (16 kHz / 64 mels for speech, 22,050 Hz / 80 mels for music).

Columns, means over the split's clips (``core/spectral_distance.py``, ``core/periodicity.py``,
``core/speech_quality.py``):
multi-resolution STFT distance (auraloss, Parallel WaveGAN's three resolutions), mel L1 (natural
log of the domain's mel power), LSD (dB); speech: periodicity RMSE and V/UV F1 (Vocos's / CARGAN's
CREPE recipe, with CREPE tiny instead of full: :data:`PITCH`), PESQ (wide-band) and STOI; music: H_err (seed 002 eq. 13, semitones; Σ over five
partials and the per-partial mean) on the notes and on the chords. Then per row: × real time on
one thread and on two (inversion only, after a warm-up, the first ``--rtf-items`` clips),
parameters and the twin's training wall time. ``--batching``: the batched GAN generators' time
for 8 clips in one call against 8 calls (each shape warmed up, best of 3). ``--listen DIR``: a
listening set (the first three clips of the split and, with ``--melnet-sample``, a MelNet sample
of the speech geometry, through every row) that ``melforge-report DIR`` renders.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from melforge.core.listening_set import ListeningClip, write_listening_set
from melforge.core.metrics import harmonic_error
from melforge.core.periodicity import VOCOS, compare_tracks, track_pitch
from melforge.core.plugins import registries
from melforge.core.spectral_distance import log_spectral_distance_audio, mel_l1, multi_resolution_stft_distance
from melforge.core.speech_quality import pesq_wb, stoi
from melforge.core.stft import StftParams

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vocoder_rows import BATCHED, Row, classical_rows, learned_row, librosa_rows, time_batched  # noqa: E402
from vocoder_sets import DOMAINS, Item, music_items, speech_items  # noqa: E402


def set_threads(n: int) -> None:
    """Run everything on ``n`` threads: torch, Numba and the BLAS/OpenMP pools."""
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n)


#: The pitch tracking of the periodicity columns: Vocos's recipe with CREPE ``tiny`` instead of
#: ``full`` (``full`` costs about 10 s per second of speech on this CPU, ``tiny`` about 0.4 s).
PITCH = replace(VOCOS, capacity="tiny")


class References:
    """Each reference clip's analysis, computed once for all rows: its pitch track (speech)."""

    def __init__(self):
        self._tracks: dict[str, object] = {}

    def track(self, item: Item):
        if item.id not in self._tracks:
            self._tracks[item.id] = track_pitch(item.audio, item.sr, PITCH)
        return self._tracks[item.id]


def item_metrics(item: Item, estimate: np.ndarray, mel_cfg: dict, refs: References) -> dict:
    """The quality figures of one clip (see the module docstring)."""
    ref, sr = item.audio, item.sr
    stft = StftParams(sr=sr, n_fft=mel_cfg["n_fft"], hop_length=mel_cfg["hop_length"], win_length=mel_cfg["win_length"])
    out = {
        "mrstft": multi_resolution_stft_distance(ref, estimate),
        "mel_l1": mel_l1(ref, estimate, sr, mel_cfg["n_fft"], mel_cfg["hop_length"], mel_cfg["n_mels"], mel_cfg["fmin"],
                         mel_cfg["fmax"]),
        "lsd": log_spectral_distance_audio(ref, estimate, stft),
    }
    if item.subset == "speech":
        p = compare_tracks(refs.track(item), track_pitch(estimate, sr, PITCH))
        out.update(periodicity=p.periodicity_rmse, vuv_f1=p.vuv_f1, pesq=pesq_wb(ref, estimate, sr, item.id),
                   stoi=stoi(ref, estimate, sr, clip=item.id))
    else:
        h = harmonic_error(ref, estimate, sr, list(item.f0s_hz))
        out.update({f"herr_sum_{item.subset}": h.sum_mean, f"herr_mean_{item.subset}": h.mean})
    return out


def score(rows: list[Row], items: list[Item], representation, mel_cfg: dict, keep: int) -> tuple[dict, dict]:
    """Every row on every item: ``({label: {figure: mean}}, {label: [first keep estimates]})``."""
    results, kept, refs = {}, {}, References()
    for row in rows:
        figures, kept[row.label] = defaultdict(list), []
        start = time.perf_counter()
        for item in items:
            mel_power = np.exp(representation.analyze(item.audio).astype(np.float64))
            estimate = np.asarray(row.invert(mel_power, len(item.audio)), dtype=np.float32)
            if len(kept[row.label]) < keep:
                kept[row.label].append(estimate)
            for key, value in item_metrics(item, estimate, mel_cfg, refs).items():
                figures[key].append(value)
        results[row.label] = {k: float(np.nanmean(v)) for k, v in figures.items()}
        print(f"  {row.label}: {time.perf_counter() - start:.0f} s, "
              + ", ".join(f"{k} {v:.3f}" for k, v in results[row.label].items()), file=sys.stderr, flush=True)
    return results, kept


def real_time(rows: list[Row], items: list[Item], representation, threads: int) -> dict:
    """``{label: × real time}``: audio seconds over the inversion's wall seconds, ``threads``
    threads, after one warm-up inversion (Numba compilation, first calls)."""
    set_threads(threads)
    mels = [np.exp(representation.analyze(i.audio).astype(np.float64)) for i in items]
    out = {}
    for row in rows:
        row.invert(mels[0], len(items[0].audio))
        start = time.perf_counter()
        for mel, item in zip(mels, items):
            row.invert(mel, len(item.audio))
        out[row.label] = sum(len(i.audio) for i in items) / items[0].sr / (time.perf_counter() - start)
    set_threads(1)
    return out


def batching(rows: list[Row], items: list[Item], representation, batch: int = 8, repeats: int = 3) -> list[str]:
    """Markdown lines: for each batched GAN generator (:data:`BATCHED`), one thread, the time of
    ``batch`` equal-length clips in one ``invert_mel_batch`` call against ``batch`` calls of one.

    Both shapes are run once before timing (oneDNN builds its kernels for a new input shape on
    the first call, a one-off cost that a first timed batched call would include), then each is
    timed ``repeats`` times, alternating, and the fastest of each is reported."""
    batch = min(batch, len(items))
    frames = min(len(representation.analyze(i.audio)) for i in items[:batch])
    mels = np.stack([np.exp(representation.analyze(i.audio)[:frames]) for i in items[:batch]])
    lines = [f"| generator ({batch} clips of {frames} frames, one thread, best of {repeats}) | {batch} single calls (s) "
             "| one batched call (s) | ratio |", "| --- | ---: | ---: | ---: |"]
    for row in rows:
        if row.name not in BATCHED:
            continue
        single, together = time_batched(row.inverter.invert_mel_batch, mels, repeats)
        lines.append(f"| {row.label} | {single:.3f} | {together:.3f} | {together / single:.2f} |")
    return lines


SPEECH_COLUMNS = (("mrstft", "M-STFT"), ("mel_l1", "mel L1"), ("lsd", "LSD (dB)"), ("periodicity", "periodicity RMSE"),
                  ("vuv_f1", "V/UV F1"), ("pesq", "PESQ (wb)"), ("stoi", "STOI"))
MUSIC_COLUMNS = (("mrstft", "M-STFT"), ("mel_l1", "mel L1"), ("lsd", "LSD (dB)"), ("herr_sum_notes", "notes H_err Σ5"),
                 ("herr_mean_notes", "notes H_err per partial"), ("herr_sum_chords", "chords H_err Σ5"),
                 ("herr_mean_chords", "chords H_err per partial"))


def table(rows: list[Row], results: dict, rtf: dict[int, dict], columns) -> list[str]:
    """The markdown table of one domain: quality columns, × real time per thread count,
    parameters and training minutes."""
    head = ["row"] + [c for _, c in columns] + [f"× real time, {n} thread{'s' * (n > 1)}" for n in rtf] + ["parameters", "training (min)"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for row in rows:
        r = results[row.label]
        cells = [row.label] + [f"{r[k]:.3f}" if k in r else "—" for k, _ in columns]
        cells += [f"{rtf[n][row.label]:.1f}" for n in rtf]
        cells += [f"{row.parameters:,}" if row.parameters else "0",
                  f"{row.train_minutes:.0f}" if row.train_minutes is not None else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def listening(folder: Path, domain: str, items: list[Item], rows: list[Row], kept: dict, melnet: np.ndarray | None) -> None:
    """Write the listening set of one domain into ``folder/domain`` (``melforge-report`` renders it)."""
    clips = [ListeningClip(item.id, f"{domain}, {item.subset}, held-out split", item.audio,
                           {row.label: kept[row.label][k] for row in rows}) for k, item in enumerate(items[:3])]
    if melnet is not None:
        mel_power = np.exp(melnet.astype(np.float64))
        length = (len(melnet) - 1) * DOMAINS[domain]["hop_length"]  # F frames of a centred STFT
        clips.append(ListeningClip("melnet_sample", "a MelNet sample (no reference audio)", None,
                                   {row.label: row.invert(mel_power, length) for row in rows}))
    write_listening_set(folder / domain, items[0].sr, clips)


def domain_rows(domain: str, vocoders: list[str], pg_additions: bool, learned_only: bool = False) -> tuple[object, list[Row]]:
    """The domain's representation and rows (learned rows of another geometry are left out, with
    the reason on stderr)."""
    cfg = DOMAINS[domain]
    representation = registries().representation.build(cfg)
    rows = [] if learned_only else librosa_rows(representation) + classical_rows(cfg)
    for spec in vocoders:
        variants = [{}] + ([{"harmonic_prior": True, "refine_partials": True}] if pg_additions and spec.startswith("pg_vocoder:") else [])
        for overrides in variants:
            try:
                rows.append(learned_row(spec, cfg, **overrides))
            except ValueError as e:
                print(f"{domain}: left out {spec}: {e}", file=sys.stderr)
    return representation, rows


def run_domain(domain: str, args) -> list[str]:
    """Score, time and (optionally) listen to every row of one domain; the markdown lines."""
    representation, rows = domain_rows(domain, args.vocoder, args.pg_additions, args.learned_only)
    if domain == "speech":
        items, columns = speech_items(args.split, args.speech_clips), SPEECH_COLUMNS
    else:
        items, columns = music_items(args.split, args.note_step, args.chord_step), MUSIC_COLUMNS
    set_threads(1)
    print(f"{domain} {args.split}: {len(items)} clips, {len(rows)} rows", file=sys.stderr, flush=True)
    results, kept = score(rows, items, representation, DOMAINS[domain], keep=3)
    rtf = {n: real_time(rows, items[: args.rtf_items], representation, n) for n in (1, 2)} if args.rtf_items else {}
    seconds = sum(len(i.audio) for i in items) / items[0].sr
    lines = [f"### {domain}, {args.split} split: {len(items)} clips, {seconds:.0f} s", ""]
    lines += table(rows, results, rtf, columns)
    if args.batching:
        lines += [""] + batching(rows, items, representation)
    if args.listen:
        melnet = np.load(args.melnet_sample) if args.melnet_sample and domain == "speech" else None
        listening(Path(args.listen), domain, items, rows, kept, melnet)
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), required=True)
    parser.add_argument("--domains", default="speech,music")
    parser.add_argument("--vocoder", action="append", default=[], help="NAME:CHECKPOINT of a trained vocoder (repeat)")
    parser.add_argument("--speech-clips", type=int, default=24)
    parser.add_argument("--note-step", type=int, default=4)
    parser.add_argument("--chord-step", type=int, default=12)
    parser.add_argument("--rtf-items", type=int, default=4, help="clips timed per row (0: no timing columns)")
    parser.add_argument("--pg-additions", action="store_true", help="also pg_vocoder with the harmonic prior and refinement")
    parser.add_argument("--batching", action="store_true")
    parser.add_argument("--learned-only", action="store_true", help="only the --vocoder rows (the dev split's checkpoint choices)")
    parser.add_argument("--listen", default=None, help="write a listening set into this folder")
    parser.add_argument("--melnet-sample", default=None, help="a MelNet sample (.npy log-mel) of the speech geometry")
    parser.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = parser.parse_args()
    lines = []
    for domain in args.domains.split(","):
        lines += run_domain(domain, args)
    load = os.getloadavg()
    lines.append(f"Load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
