"""``melforge-invert input=IN output=OUT.wav inverter=NAME``: spectrogram → waveform.

    melforge-invert input=speech.wav output=gl.wav                       # log_mel, griffin_lim
    melforge-invert input=speech.wav output=p.wav inverter=pghi inverter.refine=griffin_lim inverter.refine_iters=32
    melforge-invert input=feats.npy output=g.wav inverter=gradient representation.sr=22050

An audio input is analysed with the configured representation and inverted with
``representation.to_audio`` — a mel representation hands the inverter its mel power
(``Inverter.invert_mel``: Griffin-Lim and the gradient inverter fit the mel target directly, others
invert the NNLS magnitude, :func:`melforge.core.mel_inversion.nnls_magnitude`) — and SC / LSD
against the input's STFT magnitude and the time taken are printed. A ``.npy`` input holds features
``(frames, n_bins)`` of the configured representation. The WAV is written atomically.

Every config value and the output path (not a folder, not under a file, in a writable folder)
are checked before any work; errors are one line on stderr with exit status 2
(:func:`melforge.core.app.run_hydra_app`). While it runs, a line gives the input's duration and
a bar the inverter's iterations.
"""

from __future__ import annotations

import sys

from melforge.core import progress
from melforge.core.app import run_hydra_app
from melforge.core.inversion import check_invert_config, invert_file


def _task(cfg: dict, output_dir: str) -> None:
    from melforge.core.inversion import inversion_parts  # torch after the OpenMP policy is set

    representation, inverter = inversion_parts(cfg)  # a trained inverter brings its own representation

    def log(line: str) -> None:
        print(f"melforge-invert: {line}, inverter {cfg['inverter']['name']}", file=sys.stderr)

    with progress.bars():
        report = invert_file(cfg["input"], cfg["output"], representation, inverter, log=log)
    line = f"{cfg['output']}: {report['samples'] / report['sr']:.2f} s inverted in {report['seconds']:.3f} s"
    line += f" ({report['samples'] / report['sr'] / max(report['seconds'], 1e-9):.1f}x real time"
    if "analysis_seconds" in report:
        line += f"; analysis {report['analysis_seconds']:.3f} s"
    line += ")"
    if "sc_db" in report:
        line += f", SC {report['sc_db']:.2f} dB, LSD {report['lsd_db']:.2f} dB"
    print(f"{line} [{cfg['inverter']['name']}, {(inverter.representation_config() or cfg['representation'])['name']}]")


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/invert.yaml``)."""
    run_hydra_app("melforge-invert", "invert", _task, check_invert_config)


if __name__ == "__main__":
    main()
