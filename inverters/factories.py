"""Config-facing factories of the built-in inverters (what :mod:`melforge.inverters.plugin`
registers): each turns the flat keys of ``configs/inverter/<name>.yaml`` into composed objects.

    griffin_lim  init: pghi                      → GriffinLim(initializer=PGHI())
    pghi         refine: griffin_lim             → GriffinLim(refine_iters, initializer=PGHI())
    pghi         refine: gradient                → GradientInversion(PGHI(), refine_iters)
    pghi         refine: griffin_lim+gradient    → GradientInversion(GriffinLim(gl_iters, initializer=PGHI()), refine_iters)
    gradient     init: pghi, init_iters: 50      → GradientInversion(GriffinLim(50, initializer=PGHI()), n_iter)

Only this module knows all three inverter classes; they know each other only as
:class:`melforge.core.inverter.Inverter` objects handed to their constructors.
"""

from __future__ import annotations

import numpy as np

from melforge.core.inverter import Inverter

from .gradient import GradientInversion
from .griffin_lim import GriffinLim
from .pghi import GAMMA_HANN, PGHI

#: ``griffin_lim`` config: starting phases.
GRIFFIN_LIM_INITS = ("random", "zero", "pghi")
#: ``pghi`` config: refinements after PGHI.
PGHI_REFINES = (None, "griffin_lim", "gradient", "griffin_lim+gradient")
#: ``gradient`` config: starts of L-BFGS.
GRADIENT_INITS = ("griffin_lim", "pghi", "random", "zero")


def _check_count(kind: str, key: str, value) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"{kind}: {key} must be an integer >= 0, got {value!r}")
    return int(value)


def build_griffin_lim(n_iter: int = 32, momentum: float = 0.99, init: str = "random", seed: int = 0) -> GriffinLim:
    """Fast Griffin-Lim (Perraudin et al. 2013) from a random, zero or PGHI phase (``init``).

    ``init="pghi"`` starts from :class:`PGHI` (Průša et al. 2017) seeded with the first draw of
    ``numpy.random.default_rng(seed)``, the seed ``init: pghi`` has always used.

    Raises:
        ValueError: an unknown ``init``; see :class:`GriffinLim`.
    """
    if init not in GRIFFIN_LIM_INITS:
        raise ValueError(f"griffin_lim: init must be one of {GRIFFIN_LIM_INITS}, got {init!r}")
    if init == "pghi":
        pghi = PGHI(seed=int(np.random.default_rng(seed).integers(2**31)))
        return GriffinLim(n_iter, momentum, seed=seed, initializer=pghi)
    return GriffinLim(n_iter, momentum, init=init, seed=seed)


def build_pghi(
    tol: float = 1e-5,
    refine: str | None = None,
    refine_iters: int = 32,
    gl_iters: int = 50,
    momentum: float = 0.99,
    gamma: float = GAMMA_HANN,
    seed: int = 0,
) -> Inverter:
    """Phase-gradient heap integration (Průša et al. 2017), optionally refined by fast GL and/or L-BFGS.

    Args:
        tol: relative magnitude (to the maximum) below which PGHI phases are random.
        refine: ``None`` (PGHI alone), ``"griffin_lim"`` (fast GL from the PGHI phase),
            ``"gradient"`` (L-BFGS from the PGHI signal, Decorsière et al. 2015) or
            ``"griffin_lim+gradient"`` (``gl_iters`` fast-GL iterations, then L-BFGS).
        refine_iters: iterations of the last refinement (GL iterations for ``"griffin_lim"``,
            L-BFGS iterations for the other two).
        gl_iters: fast-GL iterations before L-BFGS for ``"griffin_lim+gradient"``.
        momentum: fast-GL momentum α.
        gamma: ``λ / win_length²`` of the Gaussian that approximates the Hann window.
        seed: seed of PGHI's random phases.

    Returns:
        :class:`PGHI`, or the refiner composed around it.

    Raises:
        ValueError: an unknown ``refine``, negative ``refine_iters`` or ``gl_iters``; see
            :class:`PGHI`, :class:`GriffinLim`, :class:`GradientInversion`.
    """
    if refine in ("null", "none", "None"):
        refine = None
    if refine not in PGHI_REFINES:
        raise ValueError(f"pghi: refine must be one of {PGHI_REFINES}, got {refine!r}")
    refine_iters = _check_count("pghi", "refine_iters", refine_iters)
    gl_iters = _check_count("pghi", "gl_iters", gl_iters)
    start: Inverter = PGHI(tol=tol, gamma=gamma, seed=seed)
    if refine is None:
        return start
    if refine == "griffin_lim":
        return GriffinLim(refine_iters, momentum, seed=seed, initializer=start)
    if refine == "griffin_lim+gradient":
        start = GriffinLim(gl_iters, momentum, seed=seed, initializer=start)
    return GradientInversion(start, n_iter=refine_iters)


def build_gradient(n_iter: int = 50, init: str = "pghi", init_iters: int = 50, seed: int = 0, memory: int = 5) -> GradientInversion:
    """L-BFGS on the waveform (Decorsière et al. 2015) from a fast-GL start (``init``, ``init_iters``).

    Args:
        n_iter: L-BFGS iterations.
        init: the start: ``"pghi"`` (PGHI then ``init_iters`` fast-GL iterations),
            ``"griffin_lim"`` (``init_iters`` fast-GL iterations from a random phase),
            ``"random"`` or ``"zero"`` (the magnitude with random / zero phase).
        init_iters: fast-GL iterations of the ``"pghi"`` and ``"griffin_lim"`` starts.
        seed: seed of the start's random phases.
        memory: L-BFGS history size.

    Raises:
        ValueError: an unknown ``init``, negative ``init_iters``; see :class:`GradientInversion`.
    """
    if init not in GRADIENT_INITS:
        raise ValueError(f"gradient: init must be one of {GRADIENT_INITS}, got {init!r}")
    init_iters = _check_count("gradient", "init_iters", init_iters)
    if init == "pghi":
        start = build_griffin_lim(init_iters, init="pghi", seed=seed)
    elif init == "griffin_lim":
        start = GriffinLim(init_iters, init="random", seed=seed)
    else:
        start = GriffinLim(0, init=init, seed=seed)
    return GradientInversion(start, n_iter=n_iter, memory=memory)
