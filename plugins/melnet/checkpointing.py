"""Optional gradient checkpointing of one layer (activations recomputed in the backward pass)."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def maybe_checkpoint(layer: torch.nn.Module, enabled: bool, *inputs: torch.Tensor):
    """``layer(*inputs)``; with ``enabled`` (and gradients on), only the inputs are kept for
    the backward pass and the layer's activations are recomputed there — peak memory drops
    from all layers' activations to one layer's, for about one extra forward pass."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(layer, *inputs, use_reentrant=False)
    return layer(*inputs)
