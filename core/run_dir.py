"""A run directory's guards: one writer at a time (an exclusive lock naming its PID), no
temporary files of killed writers left behind, and a resume that checks what it resumes
against the run's config before touching anything."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .atomic import remove_stale_temp_files as remove

LOCK = ".melforge.lock"

#: Config sections whose change makes a checkpoint unusable: the model's shape and the data it
#: was fitted on (its normaliser, split and crops). Everything else may change on resume.
FIXED_SECTIONS = ("representation", "dataset", "backbone", "head", "tiers", "data", "seed")
#: Sections applied to a resumed run and logged when they change.
OPTIMIZER_SECTION = "optimizer"


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock (the message names its PID)."""


class ResumeMismatch(ValueError):
    """The checkpoint in the run directory was trained with another architecture or data
    (the message lists every differing key with both values)."""


@contextlib.contextmanager
def locked_run_dir(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``run_dir/.melforge.lock`` (which holds the owner's PID)
    for the duration of the block; the lock dies with the process, even on ``kill -9``.

    Raises:
        RunDirectoryBusy: another process holds it (names that process's PID).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunDirectoryBusy(
                f"run directory {run_dir} is in use by another melforge process (PID {owner}); "
                "wait for it to finish or choose another hydra.run.dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield run_dir
    finally:
        os.close(fd)  # releases the lock


#: Folders of a run directory that melforge writes files into atomically (``""``: the run
#: directory itself: config.yaml, metrics.json, skipped.json).
WRITTEN_FOLDERS = ("", "checkpoints", "samples")


def remove_stale_temp_files(run_dir: str | os.PathLike, started: float | None = None) -> list[Path]:
    """Delete the temporary files that writers killed mid-write (``kill -9`` inside a checkpoint
    write, a power loss) left in ``run_dir``'s :data:`WRITTEN_FOLDERS`, and return them.

    Call it holding :func:`locked_run_dir`: no other training can be writing there, so every
    such file older than ``started`` (default now: this run's start) belongs to a dead writer.
    """
    started = time.time() if started is None else started
    run_dir = Path(run_dir)
    return [p for folder in WRITTEN_FOLDERS for p in remove(run_dir / folder, older_than=started)]


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_changes(saved: Mapping[str, Any], current: Mapping[str, Any], sections: tuple[str, ...]) -> list[str]:
    """``"key: saved → current"`` for every key under ``sections`` that differs."""
    old, new = flatten(saved), flatten(current)
    keys = sorted(k for k in set(old) | set(new) if k.split(".")[0] in sections)
    missing = "<absent>"
    return [f"{k}: {old.get(k, missing)!r} → {new.get(k, missing)!r}" for k in keys if old.get(k, missing) != new.get(k, missing)]


def check_resume(checkpoint: Path, saved_cfg: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """Compare the config saved in ``checkpoint`` with the run's config.

    Returns:
        The changed optimiser keys (``"optimizer.lr: 0.0001 → 0.001"``): they are applied to
        the resumed optimiser, and the caller logs them.

    Raises:
        ResumeMismatch: an architecture or data key differs (all of them listed, one per line).
    """
    fixed = config_changes(saved_cfg, cfg, FIXED_SECTIONS)
    if fixed:
        raise ResumeMismatch(
            f"cannot resume {checkpoint}: it was trained with another architecture or data; "
            f"differing keys: {'; '.join(fixed)}. Use a new hydra.run.dir, or train.resume=false to start over."
        )
    return config_changes(saved_cfg, cfg, (OPTIMIZER_SECTION,))
