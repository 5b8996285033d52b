"""Build an experiment's parts from a resolved config through the registries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from .backbone import Backbone
from .dataset import AudioDataset
from .head import Head
from .inverter import Inverter
from .model import SpectrogramModel
from .plugins import Registries, registries
from .representation import Representation


@dataclass
class Parts:
    """The objects an experiment is composed of."""

    representation: Representation
    model: SpectrogramModel
    inverter: Inverter
    dataset: AudioDataset | None = None


def build_model(cfg: Mapping[str, Any], regs: Registries | None = None) -> SpectrogramModel:
    """``cfg["backbone"]`` and ``cfg["head"]`` (each with a ``name``) → a composed model.
    Parameters are initialised from torch's global RNG (seed it first)."""
    regs = regs or registries()
    backbone: Backbone = regs.backbone.build(cfg["backbone"])
    head: Head = regs.head.build(cfg["head"], in_features=backbone.hidden_size)
    return SpectrogramModel(backbone, head)


def build_parts(cfg: Mapping[str, Any], *, with_dataset: bool = True, regs: Registries | None = None) -> Parts:
    """Everything named in ``cfg``: representation, model, inverter and (optionally) dataset.
    ``cfg`` is a plain dict (``OmegaConf.to_container(cfg, resolve=True)``)."""
    regs = regs or registries()
    torch.manual_seed(int(cfg.get("seed", 0)))
    return Parts(
        representation=regs.representation.build(cfg["representation"]),
        model=build_model(cfg, regs),
        inverter=regs.inverter.build(cfg["inverter"]),
        dataset=regs.dataset.build(cfg["dataset"]) if with_dataset else None,
    )
