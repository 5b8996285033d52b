"""melforge: generative audio models in the time-frequency domain.

The import package is this repository's root: ``melforge.core`` (registries, runner, shared
maths), ``melforge.plugins`` (representations, MelNet, GMM head), ``melforge.inverters``,
``melforge.datasets`` and ``melforge.configs`` (Hydra config groups, package data).
"""

__version__ = "0.1.0"
