"""Build an experiment's parts from a resolved config through the registries."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from .backbone import Backbone
from .dataset import AudioDataset
from .head import Head
from .inverter import Inverter
from .model import SpectrogramModel
from .multiscale import MultiscaleModel
from .plugins import Registries, registries
from .representation import Representation
from .tiers import TierSchedule


@dataclass
class Parts:
    """The objects an experiment is composed of."""

    representation: Representation
    model: MultiscaleModel
    inverter: Inverter
    dataset: AudioDataset | None = None


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


def build_parts(
    cfg: Mapping[str, Any],
    *,
    with_dataset: bool = True,
    regs: Registries | None = None,
    cond_features: int = 0,
) -> Parts:
    """Everything named in ``cfg``: representation, model, inverter and (optionally) dataset.
    ``cfg`` is a plain dict (``OmegaConf.to_container(cfg, resolve=True)``)."""
    regs = regs or registries()
    torch.manual_seed(int(cfg.get("seed", 0)))
    representation = regs.representation.build(cfg["representation"])
    return Parts(
        representation=representation,
        model=build_model(cfg, regs, cond_features=cond_features, bins=representation.n_bins),
        inverter=regs.inverter.build(cfg["inverter"]),
        dataset=regs.dataset.build(cfg["dataset"]) if with_dataset else None,
    )
