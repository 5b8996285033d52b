"""What ``melforge-train`` fits, built from a config: a likelihood model
(:class:`~melforge.core.model_learner.ModelLearner`, ``trains: model``, the default) or a
trainable inverter's learner (``trains: inverter``), and :func:`train`, the one training loop
over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from .config_schema import TrainApp, typed
from .experiment import build_experiment
from .inverter import InverterTrainingParts
from .learner import Learner
from .model_learner import ModelLearner
from .plugins import registries
from .training import train as train_learner

#: Values of the top-level config key ``trains``: what a ``melforge-train`` run fits.
TRAINS = ("model", "inverter")


def build_learner(cfg: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> Learner:
    """The learner ``cfg`` describes (``state``: the checkpoint a run resumes from).

    Raises:
        ValueError: an unknown ``trains``; ``trains: inverter`` with an inverter that has no
            parameters (names ``inverter.name``).
        DatasetError, EntryConfigError, UnknownEntryError, SamplerError: bad data or config (named).
    """
    app = typed(TrainApp, cfg)
    trains = app.trains
    if trains == "model":
        return ModelLearner(build_experiment(cfg, state=state))
    if trains != "inverter":
        raise ValueError(f"trains={trains!r}: expected one of {', '.join(TRAINS)}")
    regs = registries()
    trainable = regs.inverter.build(cfg["inverter"]).trainable()
    if trainable is None:
        raise ValueError(
            f"inverter.name={cfg['inverter']['name']!r}: this inverter has no parameters to train "
            "(trains: inverter needs a trainable inverter, e.g. pg_vocoder)"
        )
    torch.manual_seed(app.seed)
    parts = InverterTrainingParts(cfg, regs.representation.build(cfg["representation"]), regs.dataset.build(cfg["dataset"]))
    return trainable.learner(parts)


def train(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train what ``cfg`` describes into ``run_dir`` (:func:`melforge.core.training.train` over
    :func:`build_learner`); returns the metrics written to ``metrics.json``.

    Raises:
        See :func:`melforge.core.training.train` and :func:`build_learner`.
    """
    return train_learner(cfg, run_dir, build_learner)
