"""The config groups' options as files: which option selects which registered part, what each
experiment is for, and close matches for a mistyped key or option.

Hydra picks a part with ``group=option`` (``dataset=asterisk_en``), where ``option`` is a file
``<group>/<option>.yaml`` on the config search path, and that file's ``name:`` is the registered
name (``asterisk_prompts``). This module reads the files directly (no Hydra, no torch), so
``melforge-plugins``, ``--help`` and the one-line errors of :mod:`melforge.core.app` can say
which option selects which part quickly.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path

_NAME = re.compile(r"^name:\s*['\"]?([\w.\-]+)", re.MULTILINE)


def config_dirs(searchpath: list[str] = ()) -> list[Path]:
    """melforge's config folder, then each plugin search-path entry that is a folder.

    Args:
        searchpath: Hydra search-path entries (``pkg://my_pkg.configs``, ``file:///abs/dir`` or a
            plain path), as :attr:`melforge.core.plugins.Registries.config_searchpath` holds them.

    Returns:
        Existing folders, melforge's own first (Hydra's primary config path). An entry whose
        package cannot be found is left out (Hydra reports it when it composes).
    """
    dirs = [Path(__file__).resolve().parent.parent / "configs"]
    for entry in searchpath:
        if entry.startswith("pkg://"):
            try:
                spec = importlib.util.find_spec(entry[len("pkg://"):])
            except (ImportError, ValueError):
                continue
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
            path = Path(locations[0]) if locations else None
        else:
            path = Path(entry[len("file://"):] if entry.startswith("file://") else entry)
        if path is not None and path.is_dir() and path not in dirs:
            dirs.append(path)
    return dirs


def group_options(dirs: list[Path]) -> dict[str, dict[str, Path]]:
    """``{group: {option: file}}`` for every ``<group>/<option>.yaml`` in ``dirs`` (the first
    folder that has an option wins, as on Hydra's search path)."""
    groups: dict[str, dict[str, Path]] = {}
    for root in dirs:
        for path in sorted(root.glob("*/*.yaml")):
            groups.setdefault(path.parent.name, {}).setdefault(path.stem, path)
    return groups


def selected_name(path: Path) -> str | None:
    """The registered name an option file selects (its top-level ``name:``), or ``None``."""
    m = _NAME.search(path.read_text())
    return m.group(1) if m else None


def options_by_name(dirs: list[Path], group: str) -> dict[str, list[str]]:
    """``{registered name: [options that select it]}`` for one group, e.g. for ``dataset``
    ``{"asterisk_prompts": ["asterisk_en", "asterisk_speakers"], …}``."""
    found: dict[str, list[str]] = {}
    for option, path in group_options(dirs).get(group, {}).items():
        name = selected_name(path)
        if name is not None:
            found.setdefault(name, []).append(option)
    return found


def purpose(path: Path) -> str:
    """The first sentence of a config file's leading comment, backticks removed: up to the first
    ``.`` or ``;`` outside parentheses (never cut inside one)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package"):
            continue
        lines.append(text)
    text = " ".join(lines).replace("`", "")
    depth = 0
    for i, ch in enumerate(text):
        depth += 1 if ch in "([" else -1 if ch in ")]" else 0
        if depth == 0 and ch in ".;" and (i + 1 == len(text) or text[i + 1] == " "):
            return text[:i].strip()
    return text.strip()


def close_matches(word: str, candidates, n: int = 3) -> list[str]:
    """The candidates closest to ``word`` (difflib, cutoff 0.6), best first."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
