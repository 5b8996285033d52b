"""Checkpoints: written atomically, the newest also as ``last.pt``, older ones pruned.

A checkpoint holds only tensors, plain containers (dict, list, tuple), strings, numbers, booleans
and ``None``: the config, speaker list and normaliser statistics go in as plain data. It is
read with ``torch.load(..., weights_only=True)``, which never runs code from the file, so a
crafted ``.pt`` handed to ``melforge-sample`` or left in a run directory is refused, not run.
"""

from __future__ import annotations

import errno
import pickle
import shutil
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path, remove_stale_temp_files

LAST = "last.pt"

#: Leaf types a checkpoint may hold (what ``torch.load(weights_only=True)`` reads back).
PLAIN_LEAVES = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, not plain data or lacks a required key (the
    message names the file)."""


class CheckpointWriteError(CheckpointError):
    """Writing a checkpoint failed — the disk is full, or another I/O error; the message names
    the file and says which, and the checkpoints written before are intact."""


def check_plain(value: Any, where: str = "state") -> None:
    """Raise :class:`CheckpointError` unless ``value`` is made only of :data:`PLAIN_LEAVES`
    inside dicts (with string or int keys), lists and tuples; ``where`` names the offending key."""
    if isinstance(value, PLAIN_LEAVES):
        return
    if isinstance(value, (dict, OrderedDict)):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"checkpoint {where}: key {k!r} is not a string or int")
            check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"checkpoint {where}: {type(value).__module__}.{type(value).__qualname__} is not plain data "
        "(tensors, dicts, lists, strings, numbers); convert it before saving"
    )


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` to ``directory/step_<step>.pt`` and ``directory/last.pt``, each atomically
    (a crash mid-write leaves the previous files intact); keep the newest ``keep`` step files.
    After a successful write, temporary files of earlier writers that were killed mid-write
    (older than this call) are removed from ``directory``: a checkpoint folder is written by one
    training at a time (the run directory's lock), so they cannot belong to a live writer.

    Raises:
        CheckpointError: ``state`` holds something other than plain data (see :func:`check_plain`);
            nothing is written.
        CheckpointWriteError: a write failed (a full disk, an I/O or permission error): the
            message names the file and says whether the disk is full; the directory is left as
            it was (``last.pt`` still holds the previous checkpoint, no partial file remains).
    """
    check_plain(state)
    started = time.time()
    directory = Path(directory)
    path = directory / f"step_{step:08d}.pt"
    new_step_file = not path.exists()
    target = path
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for target in (path, directory / LAST):
            with atomic_path(target) as tmp:
                torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:  # torch.save reports ENOSPC as "[enforce fail …] unexpected pos"
        if target != path and new_step_file:  # the step file was written, last.pt was not
            path.unlink(missing_ok=True)
        raise CheckpointWriteError(_write_failure(target, exc, _nbytes(state))) from exc
    olds = sorted(directory.glob("step_*.pt"))
    for old in olds[: max(0, len(olds) - keep)]:
        old.unlink(missing_ok=True)
    remove_stale_temp_files(directory, older_than=started)
    return path


def _nbytes(value: Any) -> int:
    """Bytes of the tensors in a plain ``value`` (about what ``torch.save`` writes)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 8


def _write_failure(target: Path, exc: BaseException, needed: int) -> str:
    """Why writing ``target`` failed, in one line: a full disk when the error says so (ENOSPC,
    EDQUOT) or too little room is left for the ``needed`` bytes, else the error itself."""
    try:
        free: int | None = shutil.disk_usage(target.parent).free
    except OSError:
        free = None
    text = str(exc).splitlines()[0] if str(exc) else ""
    full = (
        getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        or "No space left" in text
        or (free is not None and free < needed + (1 << 16))
    )
    if full:
        room = f"{target.parent} has {free} bytes free, " if free is not None else ""
        what = f"the disk is full ({room}the checkpoint needs about {needed})"
    else:
        what = "the write failed"
    last = target.parent / LAST
    kept = f"the previous checkpoint {last} is intact" if last.exists() else "no checkpoint had been written before"
    return f"could not write checkpoint {target}: {what}: {type(exc).__name__}: {text}; {kept}"


#: Keys every checkpoint the training loop writes holds (a learner adds its own extras).
REQUIRED = ("step", "model", "config")


def _refusal(path: Path, exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in melforge's words: PyTorch's own
    message advises ``weights_only=False`` (running the file's code), which melforge never shows."""
    if not zipfile.is_zipfile(path):
        return "it is not a PyTorch checkpoint file (a melforge checkpoint is a zip archive written by torch.save)"
    if isinstance(exc, pickle.UnpicklingError):
        return ("it holds objects other than tensors and plain data, so it is not a melforge checkpoint "
                "(refused unread: no code in it was run)")
    return f"it is not a melforge checkpoint of plain tensors and data ({type(exc).__name__})"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, its tensors onto ``map_location``
    (the run's configured device; default the CPU), with ``torch.load(weights_only=True)``: no
    code in the file is ever run.

    Raises:
        CheckpointError: missing or unreadable file, a file holding anything but plain data
            (e.g. a pickled object: refused, not run), or a required key absent (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any refusal with the path
        raise CheckpointError(f"checkpoint {path} was refused: {_refusal(path, exc)}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict; is it a melforge checkpoint?")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks key(s) {', '.join(missing)}; is it a melforge checkpoint?")
    return state
