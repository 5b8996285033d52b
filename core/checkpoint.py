"""Checkpoints: written atomically, the newest also as ``last.pt``, older ones pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path

LAST = "last.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or lacks a required key (message names it)."""


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` to ``directory/step_<step>.pt`` and ``directory/last.pt``, each atomically
    (a crash mid-write leaves the previous files intact); keep the newest ``keep`` step files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:08d}.pt"
    for target in (path, directory / LAST):
        with atomic_path(target) as tmp:
            torch.save(state, tmp)
    olds = sorted(directory.glob("step_*.pt"))
    for old in olds[: max(0, len(olds) - keep)]:
        old.unlink(missing_ok=True)
    return path


REQUIRED = ("step", "model", "config", "normalizer")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (on CPU).

    Raises:
        CheckpointError: missing or unreadable file, or a required key absent (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - report any unpickling failure with the path
        raise CheckpointError(f"checkpoint {path} could not be read: {type(exc).__name__}: {exc}") from exc
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks key(s) {', '.join(missing)}; is it a melforge checkpoint?")
    return state
