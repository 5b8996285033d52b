"""Build an experiment's parts from a resolved config through the registries: one
:func:`build_experiment` shared by ``melforge-train`` and ``melforge-sample``, whose
:func:`build_audio_parts` (representation and inverter) is all ``melforge-invert`` needs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from .audio_io import read_audio
from .backbone import Backbone
from .dataset import AudioDataset
from .features import FeatureCorpus
from .head import Head
from .inverter import Inverter
from .model import SpectrogramModel
from .multiscale import MultiscaleModel
from .normalization import Normalizer
from .plugins import Registries, registries
from .representation import Representation
from .sampler import Sampler, select_sampler
from .speakers import SpeakerVocabulary
from .tiers import TierSchedule


@dataclass
class Experiment:
    """The objects a run is composed of, built from one config.

    Attributes:
        cfg: the resolved config (plain dict).
        representation, inverter, dataset: the parts named by the config.
        model: the G-tier model (G = 1 for a single-tier model), weights from the checkpoint
            when one was given.
        samplers: the sampler of every tier (``cfg["sampler"]["name"]``, or the fastest that
            supports the tier's backbone and head on its device), chosen once by
            :func:`place_experiment` after the model is on its device (empty before).
        normalizer: feature normalisation (from the checkpoint, or fitted on the training set).
        speakers: the speaker vocabulary of a speaker-conditioned model, else ``None``.
        corpus: the analysed, split dataset, when it was needed.
    """

    cfg: dict
    representation: Representation
    inverter: Inverter
    dataset: AudioDataset
    model: MultiscaleModel
    samplers: list[Sampler]
    normalizer: Normalizer
    speakers: SpeakerVocabulary | None
    corpus: FeatureCorpus | None

    def load_corpus(self) -> FeatureCorpus:
        """The analysed dataset (built on first use, from the feature cache when possible)."""
        if self.corpus is None:
            self.corpus = build_corpus(self.cfg, self.dataset, self.representation)
        return self.corpus

    def prime(self, frames: int, audio_path: str | None = None) -> tuple[torch.Tensor, str | None]:
        """The normalised frames to continue (priming, seed 000 §6): the first ``frames`` frames
        of ``audio_path``, or else of the first validation clip that is long enough.
        Returns ``((1, frames, n_bins), its speaker label or None)``.

        Raises:
            ValueError: the audio (or every validation clip) is shorter than ``frames`` (named).
        """
        if audio_path:
            feats = self.representation.analyze(read_audio(audio_path, self.representation.sr))
            if len(feats) < frames:
                raise ValueError(
                    f"sample.prime_audio={audio_path}: {len(feats)} frames, fewer than sample.prime_frames={frames}"
                )
            return torch.from_numpy(self.normalizer.normalize(feats[:frames])).unsqueeze(0), None
        corpus = self.load_corpus()
        for feats, speaker in zip(corpus.valid, corpus.valid_speakers):
            if len(feats) >= frames:
                return torch.from_numpy(self.normalizer.normalize(feats[:frames])).unsqueeze(0), speaker
        raise ValueError(f"sample.prime_frames={frames}: no validation clip is that long")


def build_corpus(cfg: Mapping[str, Any], dataset: AudioDataset, representation: Representation) -> FeatureCorpus:
    """``dataset`` analysed with ``representation`` and split as ``cfg["data"]`` says."""
    dcfg = cfg["data"]
    return FeatureCorpus.build(
        dataset, representation, valid_fraction=float(dcfg["valid_fraction"]), trim_db=dcfg.get("trim_db")
    )


def build_audio_parts(cfg: Mapping[str, Any], regs: Registries | None = None) -> tuple[Representation, Inverter]:
    """The representation and inverter ``cfg`` names: the parts between features and audio,
    all that ``melforge-invert`` needs, and the first :func:`build_experiment` builds.

    Raises:
        EntryConfigError, UnknownEntryError: a bad ``representation`` or ``inverter`` group.
    """
    regs = regs or registries()
    return regs.representation.build(cfg["representation"]), regs.inverter.build(cfg["inverter"])


def build_experiment(
    cfg: Mapping[str, Any],
    *,
    state: Mapping[str, Any] | None = None,
    need_corpus: bool = True,
    regs: Registries | None = None,
) -> Experiment:
    """Every part ``cfg`` names, composed.

    Args:
        cfg: resolved config (plain dict) with ``representation``, ``dataset``, ``backbone``,
            ``head``, ``inverter``, ``data`` and optionally ``sampler``, ``tiers``, ``seed``.
        state: a checkpoint (:func:`melforge.core.checkpoint.load_checkpoint`): its weights,
            normaliser and speaker list are used instead of fresh ones.
        need_corpus: analyse the dataset now (always done without ``state``: the normaliser
            and the speaker list come from the training set).
        regs: registries (default: the process-wide ones).

    Raises:
        DatasetError, EntryConfigError, UnknownEntryError, SamplerError: bad data or config
            (each names the part or key).
    """
    regs = regs or registries()
    cfg = dict(cfg)
    representation, inverter = build_audio_parts(cfg, regs)
    dataset = regs.dataset.build(cfg["dataset"])
    corpus = build_corpus(cfg, dataset, representation) if need_corpus or state is None else None
    speakers = None
    if cfg["data"].get("speaker_conditioning", False):
        speakers = SpeakerVocabulary(state["speakers"] if state is not None else corpus.train_speakers)
    torch.manual_seed(int(cfg.get("seed", 0)))
    model = build_model(cfg, regs, cond_features=len(speakers) if speakers else 0, bins=representation.n_bins)
    if state is not None:
        model.load_state_dict(state["model"])
        normalizer = Normalizer.from_state_dict(state["normalizer"])
    else:
        normalizer = representation.fit_normalizer(corpus.train)
    return Experiment(cfg, representation, inverter, dataset, model, [], normalizer, speakers, corpus)


def tier_layers(cfg: Mapping[str, Any]) -> list[int] | None:
    """``cfg["tiers"]["layers"]`` as a list of ints (layers per tier, initial tier first, as
    Table 2 writes "12 / 5-4-3-2-2"), or ``None`` when absent (one tier, the backbone's own
    ``layers``).

    Raises:
        ValueError: not a non-empty list of positive integers (names the key).
    """
    layers = (cfg.get("tiers") or {}).get("layers")
    if layers is None:
        return None
    if isinstance(layers, int):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(n, int) and n >= 1 for n in layers):
        raise ValueError(f"tiers.layers: expected a non-empty list of positive integers, got {layers!r}")
    return list(layers)


def build_model(
    cfg: Mapping[str, Any],
    regs: Registries | None = None,
    *,
    cond_features: int = 0,
    bins: int | None = None,
) -> MultiscaleModel:
    """``cfg["backbone"]``, ``cfg["head"]`` and ``cfg["tiers"]`` → a model of G tiers (seed 000
    §5; G = 1 is a single-tier model). Parameters are initialised from torch's global RNG.

    Each tier's backbone is built from ``cfg["backbone"]`` with, as extra keyword arguments,
    ``layers`` (that tier's entry of ``tiers.layers``), ``context=True`` for tiers after the
    first, ``cond_features`` when non-zero, and ``bins`` (the tier's bins per frame) when the
    factory accepts it.

    Args:
        cfg: resolved config (plain dict).
        regs: registries (default: the process-wide ones).
        cond_features: width of the conditioning vector ``z`` (e.g. the number of speakers).
        bins: bins per frame of the full spectrogram (default: from ``cfg["representation"]``).

    Raises:
        ValueError: ``tiers.layers`` malformed, or ``bins`` not divisible by the schedule.
    """
    regs = regs or registries()
    layers = tier_layers(cfg)
    n_tiers = 1 if layers is None else len(layers)
    schedule = TierSchedule(n_tiers)
    if bins is None:
        bins = regs.representation.build(cfg["representation"]).n_bins
    if bins % schedule.freq_factor:
        raise ValueError(
            f"tiers.layers has {n_tiers} tiers, which halve the bins {schedule.freq_factor.bit_length() - 1} times; "
            f"the representation's {bins} bins must be a multiple of {schedule.freq_factor}"
        )
    factory = regs.backbone.get(str(cfg["backbone"]["name"])).factory
    takes_bins = _accepts(factory, "bins")
    tier_bins = [b for _, b in schedule.shapes(schedule.time_factor, bins)]
    tiers = []
    for g in range(1, n_tiers + 1):
        extra: dict[str, Any] = {}
        if layers is not None:
            extra["layers"] = layers[g - 1]
        if g > 1:
            extra["context"] = True
        if cond_features:
            extra["cond_features"] = int(cond_features)
        if takes_bins:
            extra["bins"] = tier_bins[g - 1]
        backbone: Backbone = regs.backbone.build(cfg["backbone"], **extra)
        head: Head = regs.head.build(cfg["head"], in_features=backbone.hidden_size)
        tiers.append(SpectrogramModel(backbone, head))
    return MultiscaleModel(tiers)


def _accepts(factory, name: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def place_experiment(exp: Experiment, device: torch.device, regs: Registries | None = None) -> None:
    """Move ``exp``'s model to ``device`` and choose its samplers for it, once, there
    (:func:`melforge.core.sampler.select_sampler` reads the device off the parameters: on a GPU
    the compiled CPU samplers drop out and ``auto`` picks the batched ``cached`` one).

    Raises:
        SamplerError: the config's ``sampler.name`` does not run on ``device`` (named).
    """
    regs = regs or registries()
    exp.model.to(device)
    name = (exp.cfg.get("sampler") or {}).get("name")
    options = {k: v for k, v in (exp.cfg.get("sampler") or {}).items() if k != "name"}  # weights, threads, …
    exp.samplers = [select_sampler(regs.sampler, name, tier.backbone, tier.head, options) for tier in exp.model.tiers]
