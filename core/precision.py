"""The ``precision`` key: the dtype of the forward pass under mixed precision.

    precision: fp32   # everything in float32
    precision: bf16   # autocast to bfloat16 (CPU and GPU)
    precision: fp16   # autocast to float16, with a gradient scaler against underflow

The weights and the optimiser's state stay float32 in every mode; only the forward's matrix
products run in the lower precision (``torch.autocast``). The heads' log-probabilities, and so
every reported NLL, are computed in float32 (:meth:`melforge.core.model.SpectrogramModel.log_prob`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: ``precision`` value → autocast dtype (``None``: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(ValueError):
    """``precision`` is not one of :data:`PRECISIONS` (the message names the key and the value)."""


class Precision:
    """Autocast and, for fp16, a gradient scaler, for one device.

    Args:
        name: a key of :data:`PRECISIONS`.
        device: where the forward runs.

    Raises:
        PrecisionError: an unknown ``name`` (names the ``precision`` key).
    """

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            raise PrecisionError(f"precision={name!r}: expected one of {', '.join(PRECISIONS)}")
        self.name = name
        self.device = torch.device(device)
        self.dtype = PRECISIONS[name]
        #: fp16 only: scales the loss so that small gradients do not underflow (``None`` otherwise).
        self.scaler = torch.amp.GradScaler(self.device.type) if name == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the block's forward ops in :attr:`dtype` (nothing changes for fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled for fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true scale before they are clipped (fp16)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under fp16 the scaler skips steps whose gradients overflowed and
        adapts its scale."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    @property
    def skips_overflow(self) -> bool:
        """Whether non-finite gradients are expected now and then (fp16: the scaler skips that
        step) rather than a sign of divergence."""
        return self.scaler is not None

    def state_dict(self) -> dict:
        """The scaler's state (empty unless fp16), for checkpoints."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict | None) -> None:
        """Restore :meth:`state_dict` (ignored when empty or when not fp16)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
