"""Where melforge keeps prepared data and feature caches."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MELFORGE_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$MELFORGE_CACHE`` (default ``~/.cache/melforge``) joined with ``parts``; created if missing."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "melforge").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
