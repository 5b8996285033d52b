"""Optimisers from the ``optimizer`` config group: RMSProp (MelNet, seed 000 Appendix A) and
Adam (the WaveNet baseline, Appendix A.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

#: Keys each optimiser reads (besides ``name``); anything else in the group is an error.
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "rmsprop": ("lr", "momentum", "alpha", "eps"),
    "adam": ("lr", "beta1", "beta2", "eps"),
}


def check_optimizer_config(cfg: Mapping[str, Any]) -> None:
    """Check the ``optimizer`` group without building anything.

    Raises:
        ValueError: an unknown ``optimizer.name``, a key that optimiser does not take, or a
            value that is not a positive number (names the key).
    """
    name = str(cfg.get("name", ""))
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name={name!r}: expected one of {', '.join(OPTIMIZERS)}")
    unknown = sorted(set(cfg) - {"name", *OPTIMIZERS[name]})
    if unknown:
        raise ValueError(f"optimizer.{unknown[0]}: not an option of {name} (its options: {', '.join(OPTIMIZERS[name])})")
    for key in OPTIMIZERS[name]:
        value = cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"optimizer.{key}={value!r}: expected a number")
        if key in ("lr", "eps") and not value > 0:
            raise ValueError(f"optimizer.{key}={value!r}: expected a number > 0")
        if key in ("momentum", "alpha", "beta1", "beta2") and not 0 <= value < 1 + (key == "momentum"):
            raise ValueError(f"optimizer.{key}={value!r}: expected a number in [0, 1)")


def make_optimizer(parameters: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim.RMSprop`` or ``Adam`` over ``parameters`` from ``cfg`` (the ``optimizer``
    config group: ``name`` plus the keys in :data:`OPTIMIZERS`).

    Raises:
        ValueError: an unknown ``optimizer.name``, a key that optimiser does not take, or a
            learning rate that is not positive (names the key).
    """
    check_optimizer_config(cfg)
    name, lr = str(cfg["name"]), float(cfg["lr"])
    if name == "rmsprop":
        return torch.optim.RMSprop(
            parameters, lr=lr, momentum=float(cfg.get("momentum", 0.0)),
            alpha=float(cfg.get("alpha", 0.99)), eps=float(cfg.get("eps", 1e-8)),
        )
    return torch.optim.Adam(
        parameters, lr=lr, betas=(float(cfg.get("beta1", 0.9)), float(cfg.get("beta2", 0.999))),
        eps=float(cfg.get("eps", 1e-8)),
    )


def apply_optimizer_config(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the hyperparameters of a (resumed) optimiser to ``cfg``'s; returns
    ``{key: (old, new)}`` for those that changed (so a resumed run uses the config's
    ``optimizer.lr``, not the one saved in the checkpoint)."""
    name = str(cfg["name"])
    wanted: dict[str, Any] = {"lr": float(cfg["lr"]), "eps": float(cfg.get("eps", 1e-8))}
    if name == "rmsprop":
        wanted.update(momentum=float(cfg.get("momentum", 0.0)), alpha=float(cfg.get("alpha", 0.99)))
    else:
        wanted["betas"] = (float(cfg.get("beta1", 0.9)), float(cfg.get("beta2", 0.999)))
    changed: dict[str, tuple[Any, Any]] = {}
    for group in optimizer.param_groups:
        for key, value in wanted.items():
            old = group.get(key)
            if isinstance(old, list):
                old = tuple(old)
            if old != value:
                changed[key] = (old, value)
                group[key] = value
    return changed
