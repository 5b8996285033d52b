"""The phase-gradient vocoder as an inverter (seed 002, Fig. 1): mel → network → magnitude,
bin offsets and a learned λ → phase integration (our interpretation of §3.2) → inverse STFT.
Two optional steps before the integration, the partial refinement and the harmonic prior, are
melforge additions, not in seed 002.

A vocoder is loaded from a checkpoint that ``melforge-train experiment=pg_vocoder[_tiny]`` wrote;
it inverts only mels of the geometry it was trained on (sample rate, FFT size, hop, window,
filterbank) and says which it expects otherwise. Without a checkpoint it can only be trained
(:meth:`PGVocoder.learner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from melforge.core.checkpoint import load_checkpoint
from melforge.core.dsp import stft_kernels as K
from melforge.core.dsp.phase_integration import integrate_phase
from melforge.core.inverter import InverterTrainingParts
from melforge.core.mel_vocoder import TrainedMelVocoder, check_vocoder_checkpoint
from melforge.core.stft import StftParams

from .harmonic_fit import apply_harmonic_combs, fit_harmonic_combs
from .learner import PGVocoderLearner
from .losses import LossWeights
from .network import NetworkSpec, PhaseGradientNet
from .partial_refinement import refine_frequency_offsets
from .warp import mel_warp

#: Integrators: our interpretation of seed 002 §3.2 (``pg``) or PGHI's heap fed the predicted
#: gradient (``pghi``); :mod:`melforge.core.dsp.phase_integration` says what ``pg`` interprets.
INTEGRATORS = ("pg", "pghi")


@dataclass(frozen=True)
class Integration:
    """How predicted gradients become a phase (:func:`melforge.core.dsp.phase_integration.integrate_phase`):
    the method, the thresholds λ^S (``lam_time``, eq. 3) and λ^I (``lam_freq``, eq. 4), the
    seed of the random phases, whether the predicted partial frequencies are first refined
    against the input mel (``refine_partials``,
    :func:`melforge.plugins.pg_vocoder.partial_refinement.refine_frequency_offsets`) and whether harmonic
    combs fitted to the low mel bands rewrite the bins below 1 kHz where they fit
    (``harmonic_prior``, :mod:`melforge.plugins.pg_vocoder.harmonic_fit`); neither is in seed 002:
    both are melforge additions.

    Raises:
        ValueError: an unknown method, or thresholds outside ``0 <= lam_freq <= lam_time <= 1``.
    """

    method: str = "pg"
    lam_time: float = 0.5
    lam_freq: float = 0.4
    seed: int = 0
    refine_partials: bool = False
    harmonic_prior: bool = False

    def __post_init__(self) -> None:
        if self.method not in INTEGRATORS:
            raise ValueError(f"pg_vocoder: integrator must be one of {INTEGRATORS}, got {self.method!r}")
        if not 0 <= self.lam_freq <= self.lam_time <= 1:
            raise ValueError(f"pg_vocoder: need 0 <= lam_freq <= lam_time <= 1, got {self.lam_freq}, {self.lam_time}")


@dataclass
class TrainedVocoder:
    """A trained network and the analysis it expects.

    Attributes:
        network: the trained :class:`.network.PhaseGradientNet` (eval mode).
        stft: the STFT geometry of its mels.
        mel_basis: ``(n_mels, bins)`` float32 filterbank of its mels.
        floor: the mel power floor of its features.
        representation: ``{"name", <keys>}`` of the representation it was trained on.
        source: the checkpoint's path (for messages).
    """

    network: PhaseGradientNet
    stft: StftParams
    mel_basis: np.ndarray
    floor: float
    representation: dict
    source: str

    @classmethod
    def load(cls, path: str | Path) -> "TrainedVocoder":
        """Read a checkpoint written by a ``pg_vocoder`` training run (weights-only load).

        Raises:
            CheckpointError: missing, unreadable or not plain data (names the file).
            ValueError: a checkpoint of another run (names ``inverter.checkpoint`` and what it trained).
        """
        state = load_checkpoint(path)
        check_vocoder_checkpoint(
            path, state, lambda cfg: cfg.get("trains") == "inverter" and (cfg.get("inverter") or {}).get("name") == "pg_vocoder",
            "pg_vocoder", "melforge-train experiment=pg_vocoder_tiny",
        )
        icfg = state["config"]["inverter"]
        spec = NetworkSpec(int(icfg["layers"]), int(icfg["channels"]), int(icfg["kernel_size"]), float(icfg["beta"]))
        mel_basis = state["mel_basis"].numpy().astype(np.float32)
        stft = StftParams(**{k: int(v) for k, v in state["stft"].items()})
        network = PhaseGradientNet(*mel_warp(mel_basis, stft.sr), spec)
        network.load_state_dict(state["model"])
        network.eval()
        return cls(network, stft, mel_basis, float(state["floor"]), dict(state["representation"]), str(path))


class PGVocoder(TrainedMelVocoder):
    """Seed 002's phase-gradient vocoder, with a learned λ channel (:mod:`.network`) and our
    interpretation of its §3.2 integrator.

    Args:
        trained: the loaded network and its geometry, or ``None`` for one still to be trained.
        spec: the size of a network to train (a loaded one has its checkpoint's).
        weights: the loss weights of training.
        integration: the phase integrator and its thresholds.
    """

    #: How a trained vocoder inverts; a training run resumes across changes to these keys.
    inference_keys = ("checkpoint", "integrator", "lam_time", "lam_freq", "seed", "refine_partials", "harmonic_prior")

    def __init__(self, trained: TrainedVocoder | None, spec: NetworkSpec, weights: LossWeights, integration: Integration):
        self.trained, self.spec, self.weights, self.integration = trained, spec, weights, integration

    # --- training ------------------------------------------------------------------------------

    def learner(self, parts: InverterTrainingParts) -> PGVocoderLearner:
        """A :class:`.learner.PGVocoderLearner` of :attr:`spec` on the run's mels."""
        return PGVocoderLearner(parts, self.spec, self.weights, self.inference_keys)

    # --- inversion -----------------------------------------------------------------------------

    vocoder_name = "pg_vocoder"

    def _require(self) -> TrainedVocoder:
        if self.trained is None:
            raise ValueError(
                "pg_vocoder: no trained network; set inverter.checkpoint=<run>/checkpoints/last.pt "
                "(written by melforge-train experiment=pg_vocoder_tiny)"
            )
        return self.trained

    def predict(self, mel_power: np.ndarray, *, refine: bool | None = None, harmonic: bool | None = None) -> dict[str, np.ndarray]:
        """The network's outputs for ``mel_power (frames, n_mels)``: ``{"magnitude", "dm", "dn",
        "lam"}``, ``(frames, bins)`` float64 (linear magnitude, bins, frames, the learned λ). Two melforge
        additions, not in seed 002, may follow. With ``harmonic``
        (default: the configured ``harmonic_prior``) harmonic combs are fitted to the low bands
        of ``mel_power`` (:func:`melforge.plugins.pg_vocoder.harmonic_fit.fit_harmonic_combs`) and
        rewrite the magnitude, Δm and λ below their top in the frames they fit. With ``refine``
        (default: the configured ``refine_partials``) Δm of the other peaks of the magnitude is
        refined against ``mel_power`` (:func:`melforge.plugins.pg_vocoder.partial_refinement.refine_frequency_offsets`)."""
        t = self._require()
        log_mel = np.log(np.maximum(mel_power, t.floor)).astype(np.float32)
        with torch.no_grad():
            out = t.network(torch.from_numpy(log_mel)[None])
        pred = {k: v[0].double().numpy() for k, v in out.items()}
        pred["magnitude"] = np.exp(pred.pop("logmag"))
        fit = None
        if self.integration.harmonic_prior if harmonic is None else harmonic:
            fit = fit_harmonic_combs(mel_power, t.mel_basis, t.stft)
        if self.integration.refine_partials if refine is None else refine:
            fixed = None if fit is None else np.where(np.isfinite(fit.f0), fit.top, 0)
            pred["dm"] = refine_frequency_offsets(mel_power, t.mel_basis, pred["magnitude"], pred["dm"], pred["lam"], t.stft,
                                                  fixed_below=fixed)  # fmt: skip
        if fit is not None:
            pred["magnitude"], pred["dm"], pred["lam"] = apply_harmonic_combs(
                fit, pred["magnitude"], pred["dm"], pred["lam"], t.stft)
        return pred

    def _invert_mel(self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """Network → phase integration (:attr:`integration`) → ISTFT: ``(length,)`` float32."""
        p = self.predict(mel_power)
        i = self.integration
        phase = integrate_phase(p["magnitude"], p["dm"], p["dn"], p["lam"], stft, method=i.method,
                                lam_time=i.lam_time, lam_freq=i.lam_freq, seed=i.seed)
        spec = K.polar(p["magnitude"], phase, np.empty(phase.shape, dtype=np.complex64))  # (frames, bins)
        return K.istft(spec, stft, length).astype(np.float32, copy=False)


def build_pg_vocoder(
    checkpoint: str | None = None,
    integrator: str = "pg",
    lam_time: float = 0.5,
    lam_freq: float = 0.4,
    seed: int = 0,
    layers: int = 8,
    channels: int = 1536,
    kernel_size: int = 3,
    beta: float = 5.0,
    alpha_lfcc: float = 0.1,
    n_lfcc: int = 20,
    refine_partials: bool = False,
    harmonic_prior: bool = False,
) -> PGVocoder:
    """Seed 002's phase-gradient vocoder (learned λ channel; our reading of §3.2), trained
    (``checkpoint``) or to be trained.

    Args:
        checkpoint: a ``.pt`` of a ``pg_vocoder`` training run; its network size and geometry
            override ``layers`` … ``beta``. ``None``: an untrained vocoder (for training).
        integrator: ``"pg"`` (our interpretation of §3.2) or ``"pghi"`` (PGHI's heap fed the
            predicted gradient).
        lam_time, lam_freq: λ^S and λ^I of §3.2.
        seed: seed of the random phases.
        layers, channels, kernel_size, beta: the network to train (§3.1: 8, 1536, 3, 5; with
            the λ channel and 1025 bins that is 61.8 M parameters, not Table 1's 28 M: see
            ``configs/experiment/pg_vocoder.yaml``).
        alpha_lfcc, n_lfcc: α₂ and the LFCC count of eq. 8 and 11.
        refine_partials: refine the predicted frequency offsets of the magnitude's peaks against
            the input mel before integrating (:mod:`melforge.plugins.pg_vocoder.partial_refinement`; a
            melforge addition, not in seed 002).
        harmonic_prior: fit harmonic combs to the mel bands below 1 kHz and let them rewrite
            those bins where they fit (:mod:`melforge.plugins.pg_vocoder.harmonic_fit`; a melforge
            addition, not in seed 002, for the bottom register, where the bands cannot resolve
            single partials).

    Raises:
        ValueError, CheckpointError: bad values or checkpoint (named).
    """
    spec = NetworkSpec(int(layers), int(channels), int(kernel_size), float(beta))
    trained = TrainedVocoder.load(checkpoint) if checkpoint else None
    return PGVocoder(trained, spec, LossWeights(float(alpha_lfcc), int(n_lfcc)),
                     Integration(str(integrator), float(lam_time), float(lam_freq), int(seed), bool(refine_partials),
                                 bool(harmonic_prior)))
