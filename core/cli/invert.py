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
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from melforge.core import metrics
from melforge.core.audio_io import read_audio as load_audio, write_wav
from melforge.core.validation import check_audio


def invert_features(representation, inverter, features: np.ndarray, *, length: int | None = None) -> np.ndarray:
    """Waveform ``(samples,)`` float32 from features ``(frames, n_bins)`` of ``representation``:
    ``representation.to_audio(features, inverter)`` (a mel representation hands the inverter its
    mel power, ``Inverter.invert_mel``).

    Raises:
        ValueError: features of the wrong shape or not finite; see the inverter.
    """
    return representation.to_audio(np.asarray(features), inverter, length=length)


def invert_file(input_path: str | Path, output_path: str | Path, representation, inverter) -> dict:
    """Invert an audio file or a ``.npy`` feature file into the WAV ``output_path``.

    Returns:
        ``{"seconds": wall time of the inversion, "samples": n, "sr": Hz}`` plus, for audio
        input, ``"analysis_seconds"`` and ``"sc_db"`` / ``"lsd_db"`` against the input's STFT
        magnitude.

    Raises:
        FileNotFoundError, ValueError: unreadable input, bad shapes or values (nothing is written).
    """
    input_path = Path(input_path)
    stft = representation.stft
    report: dict = {"sr": representation.sr}
    if input_path.suffix.lower() == ".npy":
        if not input_path.is_file():
            raise FileNotFoundError(f"input: no such file {str(input_path)!r}")
        start = time.perf_counter()
        audio_out = invert_features(representation, inverter, np.load(input_path, allow_pickle=False))
        report["seconds"] = time.perf_counter() - start
    else:
        audio = load_audio(input_path, stft.sr)
        start = time.perf_counter()
        features = representation.analyze(audio)
        report["analysis_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        audio_out = invert_features(representation, inverter, features, length=audio.shape[0])
        report["seconds"] = time.perf_counter() - start
        target = metrics.stft_magnitude(audio, stft)
        estimate = metrics.stft_magnitude(audio_out, stft)
        report["sc_db"] = metrics.spectral_convergence_db(target, estimate)
        report["lsd_db"] = metrics.log_spectral_distance(target, estimate)
    write_wav(output_path, check_audio(audio_out, "output audio"), stft.sr, subtype="FLOAT")
    report["samples"] = int(audio_out.shape[0])
    return report


def _run(cfg) -> None:
    from omegaconf import OmegaConf

    from melforge.core.plugins import registries

    regs = registries()
    representation = regs.representation.build(OmegaConf.to_container(cfg.representation, resolve=True))
    inverter = regs.inverter.build(OmegaConf.to_container(cfg.inverter, resolve=True))
    try:
        report = invert_file(cfg.input, cfg.output, representation, inverter)
    except (FileNotFoundError, ValueError) as exc:
        print(f"melforge-invert: {exc}", file=sys.stderr)
        sys.exit(2)
    line = f"{cfg.output}: {report['samples'] / report['sr']:.2f} s inverted in {report['seconds']:.3f} s"
    line += f" ({report['samples'] / report['sr'] / max(report['seconds'], 1e-9):.1f}x real time"
    if "analysis_seconds" in report:
        line += f"; analysis {report['analysis_seconds']:.3f} s"
    line += ")"
    if "sc_db" in report:
        line += f", SC {report['sc_db']:.2f} dB, LSD {report['lsd_db']:.2f} dB"
    print(f"{line} [{cfg.inverter.name}, {cfg.representation.name}]")


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/invert.yaml``)."""
    import hydra

    app = hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name="invert")(_run)
    app()


if __name__ == "__main__":
    main()
