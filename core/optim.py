"""Optimisers and learning-rate schedules from config sections, one table and no branch per name:
RMSProp (MelNet, seed 000 Appendix A), Adam (the WaveNet baseline, Appendix A.2) and AdamW
(HiFi-GAN and its family); an ``ExponentialLR`` decay and a linear warm-up per optimiser."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class OptimizerKind:
    """A torch optimiser and how its config keys map onto its arguments.

    Attributes:
        cls: the ``torch.optim`` class.
        defaults: every config key it reads (besides ``name`` and ``schedule``) with its default.
        kwargs: config values (defaults filled in) → the constructor's keyword arguments.
    """

    cls: type
    defaults: dict[str, float]
    kwargs: Callable[[dict[str, float]], dict[str, Any]]


def _adam_kwargs(v: dict[str, float]) -> dict[str, Any]:
    return {"lr": v["lr"], "betas": (v["beta1"], v["beta2"]), "eps": v["eps"], "weight_decay": v["weight_decay"]}


#: The optimisers a config's ``name`` selects.
OPTIMIZERS: dict[str, OptimizerKind] = {
    "rmsprop": OptimizerKind(
        torch.optim.RMSprop, {"lr": 1e-4, "momentum": 0.0, "alpha": 0.99, "eps": 1e-8}, lambda v: dict(v),
    ),
    "adam": OptimizerKind(
        torch.optim.Adam, {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}, _adam_kwargs,
    ),
    "adamw": OptimizerKind(
        torch.optim.AdamW, {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}, _adam_kwargs,
    ),
}
#: Keys of an optimiser's ``schedule`` section and their defaults (no decay, no warm-up).
SCHEDULE_DEFAULTS = {"gamma": 1.0, "warmup_steps": 0}
#: ``key: (low, high, high included)``; ``lr``, ``eps`` and ``gamma`` must be above ``low``, the rest at least ``low``.
_RANGES = {"lr": (0, None, False), "eps": (0, None, False), "momentum": (0, 2, False), "alpha": (0, 1, False),
           "beta1": (0, 1, False), "beta2": (0, 1, False), "weight_decay": (0, None, False), "gamma": (0, 1, True),
           "warmup_steps": (0, None, False)}
_ABOVE_LOW = ("lr", "eps", "gamma")


def check_optimizer_config(cfg: Mapping[str, Any], key: str = "optimizer") -> None:
    """Check an optimiser section without building anything.

    Raises:
        ValueError: an unknown ``name``, a key that optimiser does not take, or a value that is
            not a number in its range (names the key, under ``key``).
    """
    name = str(cfg.get("name", ""))
    if name not in OPTIMIZERS:
        raise ValueError(f"{key}.name={name!r}: expected one of {', '.join(OPTIMIZERS)}")
    known = OPTIMIZERS[name].defaults
    unknown = sorted(set(cfg) - {"name", "schedule", *known})
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: not an option of {name} (its options: {', '.join(known)}, schedule)")
    schedule = cfg.get("schedule") or {}
    bad = sorted(set(schedule) - set(SCHEDULE_DEFAULTS))
    if bad:
        raise ValueError(f"{key}.schedule.{bad[0]}: unknown key (known: {', '.join(SCHEDULE_DEFAULTS)})")
    for k, value in [*((k, cfg.get(k)) for k in known), *((f"schedule.{k}", v) for k, v in schedule.items())]:
        if value is None:
            continue
        base = k.removeprefix("schedule.")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}.{k}={value!r}: expected a number")
        lo, hi, hi_in = _RANGES[base]
        above = base in _ABOVE_LOW
        if value < lo or (above and value == lo) or (hi is not None and (value > hi or (value == hi and not hi_in))):
            interval = f"{'(' if above else '['}{lo}, {hi if hi is not None else 'inf'}{']' if hi_in else ')'}"
            raise ValueError(f"{key}.{k}={value!r}: expected a number in {interval}")


def optimizer_arguments(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor's keyword arguments of the optimiser ``cfg`` describes (defaults filled in)."""
    kind = OPTIMIZERS[str(cfg["name"])]
    values = {k: float(cfg[k]) if cfg.get(k) is not None else d for k, d in kind.defaults.items()}
    return kind.kwargs(values)


def make_optimizer(parameters: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any], key: str = "optimizer") -> torch.optim.Optimizer:
    """The optimiser of ``cfg`` (``name`` plus the keys of :data:`OPTIMIZERS`) over ``parameters``.

    Raises:
        ValueError: see :func:`check_optimizer_config`.
    """
    check_optimizer_config(cfg, key)
    return OPTIMIZERS[str(cfg["name"])].cls(parameters, **optimizer_arguments(cfg))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any]) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``cfg["schedule"]``, stepped once per training step: a
    linear warm-up from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps`` steps, times
    ``ExponentialLR``'s ``gamma ** step`` (``gamma = 1``: constant)."""
    schedule = {**SCHEDULE_DEFAULTS, **(cfg.get("schedule") or {})}
    parts: list[torch.optim.lr_scheduler.LRScheduler] = [
        torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(schedule["gamma"]))
    ]
    warmup = int(schedule["warmup_steps"])
    if warmup > 0:
        parts.append(torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup))
    return torch.optim.lr_scheduler.ChainedScheduler(parts, optimizer=optimizer)


def apply_optimizer_config(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the hyperparameters of a (resumed) optimiser to ``cfg``'s, except the learning rate
    that its schedule drives (``initial_lr`` is set instead, so a changed ``lr`` takes effect
    through the schedule); returns ``{key: (old, new)}`` for those that changed."""
    wanted = optimizer_arguments(cfg)
    lr = wanted.pop("lr")
    changed: dict[str, tuple[Any, Any]] = {}
    for group in optimizer.param_groups:
        old_lr = group.get("initial_lr", group.get("lr"))
        if old_lr != lr:
            changed["lr"] = (old_lr, lr)
            scale = lr / old_lr if old_lr else 1.0
            group["initial_lr"] = lr
            group["lr"] = group["lr"] * scale
        for key, value in wanted.items():
            old = group.get(key)
            if isinstance(old, list):
                old = tuple(old)
            if old != value:
                changed[key] = (old, value)
                group[key] = value
    return changed
