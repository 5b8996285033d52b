"""The ``device`` key: where the model, its batches and its samplers live.

    device: auto      # CUDA when torch sees a GPU, else the CPU
    device: cpu | cuda | cuda:N | mps

A device that is not there is an error naming the key and the value, never a quiet fallback to
the CPU. Under data-parallel training (:mod:`melforge.core.distributed`) a bare ``cuda`` means
each rank's own GPU, ``cuda:<local rank>``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .config_schema import TrainApp, typed
from .distributed import Distributed, LaunchEnv, launch_env, start_distributed
from .precision import Precision

if TYPE_CHECKING:  # pragma: no cover
    from .distributed import Distributed
    from .precision import Precision

#: The values ``device`` accepts (``cuda:N`` is ``cuda`` with a GPU index).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


class DeviceError(ValueError):
    """``device`` names no device, or one this machine does not have (the message names the key,
    the value and what is there)."""


def check_device_name(name: object, key: str = "device") -> str:
    """``name`` if it is one of :data:`DEVICE_CHOICES` in form (``cuda:N`` with any ``N``).

    Raises:
        DeviceError: anything else (names ``key`` and the value).
    """
    match = _PATTERN.match(str(name)) if isinstance(name, str) else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise DeviceError(f"{key}={name!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    return str(name)


def resolve_device(name: str, key: str = "device", local_rank: int | None = None) -> torch.device:
    """The torch device that ``name`` means on this machine.

    Args:
        name: one of :data:`DEVICE_CHOICES`; ``auto`` is ``cuda`` when ``torch.cuda.is_available()``,
            else ``cpu``.
        key: the config key, for messages.
        local_rank: this process's rank on its machine under data-parallel training: a bare
            ``cuda`` (or ``auto`` on a GPU machine) becomes ``cuda:<local_rank>``.

    Raises:
        DeviceError: a malformed name, CUDA or MPS asked for where torch has none, or a GPU index
            past the last GPU (names ``key``, the value and what this machine has).
    """
    check_device_name(name, key)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"{key}={name}: this machine has no MPS (Apple GPU) device that torch can use")
        return torch.device("mps")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + (" was built without CUDA" if torch.version.cuda is None else " sees no GPU")
        raise DeviceError(f"{key}={name}: CUDA is not available on this machine ({build}); use device=cpu or auto")
    count = torch.cuda.device_count()
    gpu = int(index) if index else (local_rank or 0)
    if gpu >= count:
        raise DeviceError(f"{key}={name}: GPU {gpu} does not exist (this machine has {count}: cuda:0..cuda:{count - 1})")
    return torch.device("cuda", gpu)


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    """A torch RNG on ``device`` seeded with ``seed`` (samplers draw their noise on the model's
    device; a CPU generator cannot fill a GPU tensor)."""
    return torch.Generator(device=device).manual_seed(int(seed))


@dataclass
class Placement:
    """Where and how a run computes: its device, its precision and its data-parallel group.

    Attributes:
        device: the model's and the batches' device.
        precision: autocast and gradient scaling (:class:`melforge.core.precision.Precision`).
        group: the data-parallel process group (:class:`melforge.core.distributed.Distributed`;
            a group of one for a single process).
    """

    device: torch.device
    precision: "Precision"
    group: "Distributed"

    @classmethod
    def local(cls, device: str | torch.device = "cpu", precision: str = "fp32") -> "Placement":
        """One process on ``device`` (no process group)."""
        device = torch.device(device)
        return cls(device, Precision(precision, device), Distributed(LaunchEnv()))

    @classmethod
    @contextlib.contextmanager
    def start(cls, cfg: Mapping[str, Any]) -> Iterator["Placement"]:
        """The placement ``cfg`` asks for (``device``, default ``auto``; ``precision``, default
        ``fp32``), with the process group of the launcher that started this process
        (:func:`melforge.core.distributed.start_distributed`) for the block.

        Raises:
            DeviceError, PrecisionError, LaunchError: see :func:`resolve_device`,
                :class:`~melforge.core.precision.Precision`,
                :func:`~melforge.core.distributed.launch_env`.
        """
        app = typed(TrainApp, cfg)
        device = resolve_device(app.device, local_rank=launch_env().local_rank)
        precision = Precision(app.precision, device)
        with start_distributed(device) as group:
            yield cls(device, precision, group)
