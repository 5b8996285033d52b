"""Data-parallel training over several processes (``torch.distributed``, DDP).

A run is started by the standard launchers, and every process runs the same training:

    torchrun --nproc_per_node=2 -m melforge.core.cli.train ...        # one machine
    melforge-train -m hydra/launcher=submitit_slurm ...                 # SLURM: one task per GPU

:func:`launch_env` reads who this process is from the launcher's environment (torchrun's
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``, or SLURM's
``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``/``SLURM_NODELIST``), and
:class:`Distributed` is the process group as the training loop uses it:

- every rank draws the *same* global batch of ``train.batch_size × world size`` rows from the
  step's generator and keeps its own contiguous slice (:func:`slice_rows`), so 2 ranks at batch
  B see exactly the rows 1 process at batch 2B sees, and resumed runs draw the same batches
  whatever the number of ranks;
- gradients are averaged by DDP during ``backward``, so per-tier clipping after it sees the
  all-reduced gradient, identical on every rank;
- losses are averaged over the ranks before they are logged or checked for divergence, so
  every rank takes the same decision and none is left waiting;
- rank 0 alone writes into the run directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

#: Port for the rendezvous of a SLURM job that sets no ``MASTER_PORT``: this plus the job id
#: modulo :data:`SLURM_PORT_SPAN`, so two jobs sharing a node do not collide.
SLURM_PORT_BASE = 15000
SLURM_PORT_SPAN = 20000


class LaunchError(RuntimeError):
    """The launcher's environment is inconsistent (the message names the variable)."""


@dataclass(frozen=True)
class LaunchEnv:
    """Who this process is in a data-parallel run.

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: processes in the run (1: no data parallelism).
        local_rank: rank among the processes of this machine (its GPU index).
        master_addr, master_port: where rank 0 listens for the rendezvous (``None`` when alone).
        launcher: ``"torchrun"``, ``"slurm"`` or ``"single"``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    launcher: str = "single"


def _int(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise LaunchError(f"environment variable {name}={environ[name]!r} is not an integer") from None


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``"gpu[07-09,12],cpu1"`` → ``"gpu07"``.

    Raises:
        LaunchError: an empty or malformed list (names ``SLURM_NODELIST``).
    """
    match = re.match(r"^([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if match is None:
        raise LaunchError(f"SLURM_NODELIST={nodelist!r}: not a SLURM node list")
    prefix, ranges = match.group(1), match.group(2)
    if ranges is None:
        return prefix
    first = ranges.split(",")[0].split("-")[0]  # zero-padding is kept: "07-09" → "07"
    if not first.isdigit():
        raise LaunchError(f"SLURM_NODELIST={nodelist!r}: not a SLURM node list")
    return prefix + first


def launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv:
    """This process's place in a data-parallel run, from the launcher's environment.

    torchrun's variables win (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
    ``MASTER_PORT``). Otherwise a SLURM job step of several tasks is one rank per task:
    ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, and the rendezvous on the first host
    of ``SLURM_NODELIST`` (or ``SLURM_JOB_NODELIST``) at ``MASTER_PORT``, or
    :data:`SLURM_PORT_BASE` + ``SLURM_JOB_ID`` mod :data:`SLURM_PORT_SPAN`; ``MASTER_ADDR``,
    when set, wins. Anything else is a single process.

    Raises:
        LaunchError: a variable that is not an integer, or a rank outside the world (named).
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env and _int(env, "WORLD_SIZE") > 1:
        launched = LaunchEnv(
            rank=_int(env, "RANK"), world_size=_int(env, "WORLD_SIZE"),
            local_rank=_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=_int(env, "MASTER_PORT") if "MASTER_PORT" in env else 29500, launcher="torchrun",
        )
    elif "SLURM_NTASKS" in env and _int(env, "SLURM_NTASKS") > 1 and "SLURM_PROCID" in env:
        nodelist = env.get("SLURM_NODELIST") or env.get("SLURM_JOB_NODELIST")
        if not env.get("MASTER_ADDR") and not nodelist:
            raise LaunchError("SLURM_NODELIST is not set, and neither is MASTER_ADDR: cannot find rank 0's host")
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else (
            SLURM_PORT_BASE + (_int(env, "SLURM_JOB_ID") % SLURM_PORT_SPAN if "SLURM_JOB_ID" in env else 0)
        )
        launched = LaunchEnv(
            rank=_int(env, "SLURM_PROCID"), world_size=_int(env, "SLURM_NTASKS"),
            local_rank=_int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0,
            master_addr=env.get("MASTER_ADDR") or first_host(nodelist), master_port=port, launcher="slurm",
        )
    else:
        return LaunchEnv()
    if not 0 <= launched.rank < launched.world_size:
        raise LaunchError(f"{launched.launcher}: rank {launched.rank} is outside a world of {launched.world_size}")
    return launched


def slice_rows(fields: Any, rank: int, world_size: int) -> Any:
    """Rank ``rank``'s contiguous share of a batch's rows, field by field.

    ``fields`` is what ``data.train.draw`` returns: a tuple (or list) of per-row fields, each a
    tensor ``(batch, ...)``, a list of ``batch`` items, or ``None`` (passed through). With
    ``batch = world_size · B`` rank ``r`` keeps rows ``r·B .. (r+1)·B - 1``.

    Raises:
        ValueError: a field whose rows do not divide by ``world_size``.
    """
    if world_size == 1:
        return fields

    def one(field: Any) -> Any:
        if field is None:
            return None
        rows = len(field)
        if rows % world_size:
            raise ValueError(f"a batch of {rows} rows does not split evenly over {world_size} ranks")
        share = rows // world_size
        return field[rank * share : (rank + 1) * share]

    return type(fields)(one(f) for f in fields)


class _Call(nn.Module):
    """``forward`` = ``module.<method>(...)``: lets DDP wrap a method other than ``forward``
    (the runner calls ``tier_nlls``)."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.module, self.method)(*args, **kwargs)


class Distributed:
    """The process group as the training loop uses it (also for a single process, where every
    method is the identity).

    Args:
        env: this process's place (:func:`launch_env`).
        owns_group: whether :meth:`close` destroys the process group (it was started here).
    """

    def __init__(self, env: LaunchEnv, owns_group: bool = False):
        self.env = env
        self.rank, self.world_size, self.local_rank = env.rank, env.world_size, env.local_rank
        self.owns_group = owns_group

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes into the run directory."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    def rows(self, fields: Any) -> Any:
        """This rank's slice of a global batch (:func:`slice_rows`)."""
        return slice_rows(fields, self.rank, self.world_size)

    def wrap(self, module: nn.Module, method: str, device: torch.device, find_unused: bool) -> Any:
        """A callable that runs ``module.<method>`` and whose backward averages the gradients of
        ``module``'s parameters over the ranks (``DistributedDataParallel``); the plain method
        when alone. ``find_unused``: some parameters get no gradient (tiers not trained)."""
        if not self.active:
            return getattr(module, method)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            _Call(module, method), device_ids=ids, find_unused_parameters=find_unused
        )

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` averaged over the ranks (a new tensor, float64 on the CPU; unchanged alone)."""
        values = values.detach().to("cpu", torch.float64).clone()
        if self.active:
            values = self._all_reduce(values) / self.world_size
        return values

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (float64 on the CPU)."""
        values = values.detach().to("cpu", torch.float64).clone()
        return self._all_reduce(values) if self.active else values

    def _all_reduce(self, values: torch.Tensor) -> torch.Tensor:
        if dist.get_backend() == "nccl":  # NCCL reduces GPU tensors only
            on_gpu = values.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(on_gpu)
            return on_gpu.cpu()
        dist.all_reduce(values)
        return values

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object), on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_first(self, build: Callable[[], T]) -> T:
        """``build()`` on rank 0, then on the other ranks (which then find rank 0's caches, e.g.
        the analysed features, instead of writing the same files at once).

        Raises:
            whatever ``build`` raises on rank 0, on every rank (see :meth:`agree`).
        """
        if not self.active:
            return build()
        error, result = None, None
        if self.is_main:
            try:
                result = build()
            except Exception as exc:  # noqa: BLE001 - re-raised by agree, on every rank
                error = exc
        self.agree(error)
        return result if self.is_main else build()

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.active:
            dist.barrier()

    def agree(self, error: BaseException | None) -> None:
        """Rank 0 tells the others whether it failed (``error``); every rank then raises, so that
        none waits forever for a rank that stopped.

        Raises:
            the error itself on rank 0; on the others a :class:`RuntimeError` naming it.
        """
        message = self.broadcast(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        if message is not None:
            raise RuntimeError(f"rank 0 stopped: {message}")

    def quiet_logging(self) -> None:
        """Ranks other than 0 log nothing to files (Hydra's ``train.log`` belongs to rank 0) and
        only warnings to the console."""
        if self.is_main:
            return
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):
                root.removeHandler(handler)
                handler.close()
        logging.getLogger("melforge").setLevel(logging.WARNING)

    def close(self) -> None:
        """End the process group if it was started by :func:`start_distributed`."""
        if self.owns_group:
            dist.destroy_process_group()
            self.owns_group = False


@contextlib.contextmanager
def start_distributed(device: torch.device, environ: Mapping[str, str] | None = None) -> Iterator[Distributed]:
    """The process group of this run for the block (``gloo`` on the CPU, ``nccl`` on CUDA), from
    :func:`launch_env`; a single process gets a :class:`Distributed` of one. A process group
    that already exists (started by the caller) is used and left open.

    Raises:
        LaunchError: see :func:`launch_env`.
    """
    if dist.is_available() and dist.is_initialized():
        env = LaunchEnv(dist.get_rank(), dist.get_world_size(),
                        int((environ or os.environ).get("LOCAL_RANK", dist.get_rank())), launcher="existing")
        yield Distributed(env)
        return
    env = launch_env(environ)
    if env.world_size == 1:
        yield Distributed(env)
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if environ is None:  # env:// reads them; torchrun set them already, SLURM does not
        os.environ.setdefault("MASTER_ADDR", str(env.master_addr))
        os.environ.setdefault("MASTER_PORT", str(env.master_port))
        init = "env://"  # under torchrun this joins the launcher's own store
    else:
        init = f"tcp://{env.master_addr}:{env.master_port}"
    dist.init_process_group(backend, init_method=init, rank=env.rank, world_size=env.world_size)
    group = Distributed(env, owns_group=True)
    try:
        yield group
    finally:
        group.close()
