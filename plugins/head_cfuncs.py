"""A head's per-element maths as C-callable Numba functions (``cfunc``), the form in which
:meth:`melforge.core.head.Head.compiled_maths` hands it to compiled samplers.

A ``cfunc`` passed into a Numba kernel is typed by its signature, not by its identity, so a
kernel that takes the head's draw and log-probability as arguments is compiled once and cached
on disk for every head (a jitted function passed in would make the kernel a new type per head,
recompiled in every process). The functions take raw pointers and lengths:

* ``draw(params*, n_params, noise*, n_noise, temperature, scratch*, n_scratch) -> float64``
* ``log_prob(params*, n_params, value, scratch*, n_scratch) -> float64``

with ``params`` and ``noise`` of the model's dtype (float32 or float64), ``scratch`` float64;
a kernel passes ``array.ctypes`` for each pointer.
"""

from __future__ import annotations

import numpy as np
from numba import cfunc, types

_DTYPES = {np.dtype(np.float32): types.float32, np.dtype(np.float64): types.float64}
_MADE: dict[tuple, tuple] = {}


def signatures(dtype) -> tuple:
    """``(draw, log_prob)`` Numba signatures for parameters of ``dtype`` (float32 or float64).

    Raises:
        KeyError: another dtype.
    """
    t = types.CPointer(_DTYPES[np.dtype(dtype)])
    f64 = types.CPointer(types.float64)
    return (types.float64(t, types.intp, t, types.intp, types.float64, f64, types.intp),
            types.float64(t, types.intp, types.float64, f64, types.intp))


def c_functions(draw_c, log_prob_c, dtype) -> tuple:
    """``(cfunc(draw_c), cfunc(log_prob_c))`` for ``dtype``, compiled (or loaded from the disk
    cache) on first use and memoised; ``draw_c`` and ``log_prob_c`` are module-level Python
    functions of the pointer signatures above that wrap the head's jitted maths with
    ``numba.carray``."""
    key = (draw_c, log_prob_c, np.dtype(dtype))
    if key not in _MADE:
        sig_draw, sig_log_prob = signatures(dtype)
        _MADE[key] = (cfunc(sig_draw, cache=True)(draw_c), cfunc(sig_log_prob, cache=True)(log_prob_c))
    return _MADE[key]
