"""Bit-for-bit comparison of nested training state: batches, state dicts, checkpoints."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ, or ``None`` when they are identical.

    Mappings (same keys), lists and tuples (same lengths) are compared item by item; tensors
    and arrays by dtype, shape and every element bit for bit (NaN equals NaN in the same place);
    floats by value (NaN equals NaN); anything else by ``==``.

    Args:
        a, b: what to compare.
        path: the name of ``a`` and ``b`` in the message (``"model.net.0.weight"``).

    Returns:
        ``"<path>: <how they differ>"``, or ``None``.
    """
    where = path or "(top)"
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return f"{where}: keys differ ({sorted(map(str, set(a) ^ set(b)))})"
        for key in a:
            found = first_difference(a[key], b[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where}: lengths {len(a)} and {len(b)}"
        for k, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{k}]")
            if found:
                return found
        return None
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: {a.dtype} {a.shape} and {b.dtype} {b.shape}"
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            diff = np.abs(a.astype(np.float64) - b) if a.dtype.kind in "fiub" else None
            return f"{where}: values differ" + (f" (max |difference| {np.nanmax(diff):.3g})" if diff is not None else "")
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} and {b!r}"
    return None
