"""A cached ``melforge-plugins`` listing, so that the command answers in well under a second
once nothing has changed (loading every plugin imports torch, numba kernels and scipy: 2.5–3 s).

The listing is a pure function of the code and config files that register and describe the
parts. Its cache key hashes the interpreter, melforge's version, the ``(path, size, mtime)`` of
every ``.py`` and ``.yaml`` file of melforge's package folders, and, for every installed
distribution with a ``melforge`` entry point, its name, version, entry points and the same file
facts of the package each entry point lives in. Installing, removing or editing a plugin (or
melforge) changes the key; the first call after that loads every plugin and writes the listing
into ``$MELFORGE_CACHE/plugins/``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import melforge

from .atomic import atomic_write
from .paths import cache_dir

#: melforge's folders whose files register or describe parts.
PACKAGE_FOLDERS = ("core", "plugins", "inverters", "datasets", "configs")


def _tree_facts(root: Path, h) -> None:
    """Hash ``(relative path, size, mtime)`` of every .py/.yaml file under ``root``, sorted."""
    rows = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".yaml")):
                path = os.path.join(folder, name)
                st = os.stat(path)
                rows.append(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mtime_ns}")
    h.update("\n".join(sorted(rows)).encode())


def listing_key() -> str:
    """The cache key of the listing (see the module docstring)."""
    from .plugins import (
        discover_entry_points,  # deferred: importing melforge.core.plugins takes 88 ms; start-up does not pay for it
    )

    h = hashlib.sha256()
    h.update(f"{sys.version}\0{sys.executable}\0{melforge.__version__}\0{os.environ.get('PYTHONPATH', '')}".encode())
    root = Path(melforge.__file__).resolve().parent
    for folder in PACKAGE_FOLDERS:
        h.update(folder.encode())
        _tree_facts(root / folder, h)
    for ep in discover_entry_points():
        dist = getattr(ep, "dist", None)
        h.update(f"{dist.name if dist else ''}\0{dist.version if dist else ''}\0{ep.name}\0{ep.value}".encode())
        top = ep.value.split(":")[0].split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            _tree_facts(Path(list(spec.submodule_search_locations)[0]), h)
        elif spec is not None and spec.origin:
            st = os.stat(spec.origin)
            h.update(f"{spec.origin}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def cached_listing() -> tuple[str, bool]:
    """``(listing text, whether it came from the cache)``: the cached listing for the current
    key, or a fresh one (every plugin loaded, :func:`melforge.core.plugin_listing.format_table`)
    written to the cache for the next call."""
    path = cache_dir("plugins") / f"listing-{listing_key()}.txt"
    if path.is_file():
        return path.read_text(), True
    from .plugin_listing import (
        format_table,  # deferred: importing melforge.core.plugin_listing takes 100 ms; start-up does not pay for it
    )
    from .plugins import (
        load_registries,  # deferred: importing melforge.core.plugins takes 88 ms; start-up does not pay for it
    )

    text = format_table(load_registries())
    try:
        atomic_write(path, lambda tmp: tmp.write_text(text))
        for old in sorted(path.parent.glob("listing-*.txt"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
            old.unlink(missing_ok=True)  # listings of code that has changed since
    except OSError:  # a read-only or full cache: the listing is still right
        pass
    return text, False


#: Cached listings kept (the newest; one per installed combination of code).
KEEP = 8
