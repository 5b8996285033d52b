"""A trained source-filter vocoder (DDSP, hn-NSF, NSF-HiFiGAN) as an inverter: mel power → log-mel → F0 /
voicing estimator → vocoder → audio, batched in torch.

It is a :class:`melforge.plugins.gan_vocoders.inverter.HifiGan` in all but what it loads: the
geometry checks (another sample rate, FFT size, hop, window or filterbank is refused, both named),
the magnitude → mel path and the batched inversion are the GAN vocoders'. Its "generator" is the
:class:`.model.SourceFilterModel`, which needs only the mel (noise seed 0 for every clip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from melforge.core.checkpoint import load_checkpoint
from melforge.core.inverter import InverterTrainingParts
from melforge.core.mel_vocoder import check_vocoder_checkpoint
from melforge.core.stft import StftParams
from melforge.plugins.gan_vocoders.inverter import HifiGan, TrainedGenerator, fold_weight_norm
from melforge.plugins.gan_vocoders.learner import GanPair

from .learner import SourceFilterLearner
from .setup import VOCODERS, SourceFilterSetup


def load_trained(path: str | Path) -> TrainedGenerator:
    """Read a checkpoint written by a source-filter vocoder run (weights-only load).

    Raises:
        CheckpointError: missing, unreadable or not plain data (names the file).
        ValueError: a checkpoint of another run (names ``inverter.checkpoint`` and what it trained).
    """
    state = load_checkpoint(path)
    check_vocoder_checkpoint(
        path, state, lambda cfg: cfg.get("trains") == "inverter" and (cfg.get("inverter") or {}).get("generator") in VOCODERS,
        "source-filter vocoder", "melforge-train experiment=ddsp_tiny (or nsf_tiny)",
    )
    icfg = state["config"]["inverter"]
    mel_basis = state["mel_basis"].numpy().astype(np.float32)
    stft = StftParams(**{k: int(v) for k, v in state["stft"].items()})
    setup = SourceFilterSetup.from_config(icfg)
    model = setup.build(mel_basis.shape[0], stft.sr, stft.hop_length)
    adversarial = setup.discriminator != "none"  # trained as a GanPair: the model is its generator
    model.load_state_dict(GanPair.generator_weights(state["model"]) if adversarial else state["model"])
    model = fold_weight_norm(model).eval()
    return TrainedGenerator(model, stft, mel_basis, float(state["floor"]), dict(state["representation"]), str(path))


class SourceFilterVocoder(HifiGan):
    """A DDSP, hn-NSF or NSF-HiFiGAN vocoder with its F0 / voicing estimator.

    Args:
        trained: the loaded model and its geometry, or ``None`` for one still to be trained.
        setup: what a training run fits.
    """

    inference_keys = ("checkpoint",)

    def __init__(self, trained: TrainedGenerator | None, setup: SourceFilterSetup):
        super().__init__(trained, setup)

    def learner(self, parts: InverterTrainingParts) -> SourceFilterLearner:
        """A :class:`.learner.SourceFilterLearner` of :attr:`setup` on the run's mels."""
        return SourceFilterLearner(parts, self.setup, self.inference_keys)

    def _require(self) -> TrainedGenerator:
        if self.trained is None:
            raise ValueError(
                f"{self.setup.generator}: no trained vocoder; set inverter.checkpoint=<run>/checkpoints/last.pt "
                f"(written by melforge-train experiment={self.setup.generator}_tiny)"
            )
        return self.trained


def build_source_filter_vocoder(
    checkpoint: str | None = None,
    generator: str = "ddsp",
    hidden: int | None = None,
    mlp_layers: int | None = None,
    harmonics: int | None = None,
    noise_bands: int | None = None,
    reverb_taps: int | None = None,
    channels: int | None = None,
    blocks: int | None = None,
    layers: int | None = None,
    sines: int | None = None,
    voiced_cutoff: float | None = None,
    unvoiced_cutoff: float | None = None,
    variant: str | None = None,
    initial_channels: int | None = None,
    upsample_rates: list | None = None,
    upsample_kernels: list | None = None,
    resblock_kernels: list | None = None,
    resblock_dilations: list | None = None,
    resblock: int | None = None,
    estimator_channels: int = 64,
    estimator_layers: int = 4,
    estimator_kernel: int = 5,
    estimator_front_channels: int = 0,
    estimator_front_layers: int = 3,
    estimator_head: str = "regression",
    estimator_bin_cents: float = 20.0,
    fmin: float = 50.0,
    fmax: float = 600.0,
    pyin_frame: int = 1024,
    spectral_loss: str = "ddsp",
    f0_weight: float = 1.0,
    vuv_weight: float = 1.0,
    mel_weight: float = 0.0,
    discriminator: str = "none",
    discriminator_width: float = 1.0,
    adversarial: str = "lsgan",
    feature_weight: float = 2.0,
    feature_last: bool = True,
    adversarial_start: int = 0,
) -> SourceFilterVocoder:
    """A source-filter vocoder, trained (``checkpoint``) or to be trained; the keys are
    :class:`.setup.SourceFilterSetup`'s (see ``configs/inverter/ddsp.yaml``, ``nsf.yaml`` and
    ``nsf_hifigan.yaml``).

    Raises:
        ValueError, CheckpointError: bad values or checkpoint (named).
    """
    keys = dict(locals())
    keys.pop("checkpoint")
    setup = SourceFilterSetup.from_config(keys)
    setup.build(8, 16000, 256)  # sizes are checked now, not at the first training step
    setup.build_discriminator()
    trained = load_trained(checkpoint) if checkpoint else None
    return SourceFilterVocoder(trained, setup)
