"""One-line errors for a mistyped override, with "did you mean" from the known keys and options.

Hydra answers ``train.max_step=20`` with "To append to your config use +train.max_step=20" (advice
to add the typo) and ``dataset=asterisk_prompt`` with its search path. :func:`explain` turns such
composition errors into one line naming the override and the closest known keys or options::

    train.max_step=20: unknown key; did you mean train.max_steps?
    dataset=asterisk_prompt: no option asterisk_prompt in group dataset; did you mean dataset=asterisk_en? (options: ...)
    experiment=speech_tiny_x: unknown experiment; did you mean experiment=speech_tiny? (experiments: ...)
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .config_options import close_matches, config_dirs, group_options, options_by_name
from .run_dir import flatten

_KEY = re.compile(r"Could not override '([^']+)'")
_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")


class OverrideError(ValueError):
    """A command-line override names a key or an option that does not exist (one line)."""


def _argument(overrides: list[str], key: str) -> str:
    """The override on the command line that sets ``key`` (``key=value``), or ``key``."""
    return next((o for o in overrides if o.lstrip("+~").partition("=")[0] == key), key)


def explain(exc: BaseException, overrides: list[str], searchpath: list[str],
            compose: Callable[[list[str]], dict]) -> OverrideError | None:
    """A one-line :class:`OverrideError` for a Hydra composition error, or ``None`` when ``exc``
    is not about an unknown key or option.

    Args:
        exc: what Hydra's ``compose`` raised.
        overrides: the user's overrides (without the plugin search path).
        searchpath: plugin config search-path entries (for the group options).
        compose: composes the app's config for a list of overrides, as a plain dict; called with
            the user's group choices only, to learn the known keys.
    """
    text = str(exc)
    dirs = config_dirs(searchpath)
    groups = group_options(dirs)
    m = _KEY.search(text)
    if m:
        return _unknown_key(m.group(1), overrides, groups, compose)
    m = _OPTION.search(text)
    if m and m.group(1) in groups:
        return _unknown_option(m.group(1), m.group(2), overrides, groups, dirs)
    return None


def _unknown_key(key: str, overrides: list[str], groups: dict, compose: Callable[[list[str]], dict]) -> OverrideError:
    choices = [o for o in overrides if "=" in o and o.partition("=")[0] in groups]
    known: dict = {}
    for attempt in (choices, []):
        try:
            known = flatten(compose(attempt))
            break
        except Exception:  # noqa: BLE001 - a bad group choice: fall back to the defaults
            continue
    prefix = key.rpartition(".")[0]
    same_section = [k for k in known if k.rpartition(".")[0] == prefix]
    guesses = close_matches(key, same_section, n=1) or close_matches(key, known, n=1)
    where = _argument(overrides, key)
    if guesses:
        return OverrideError(f"{where}: unknown key; did you mean {' or '.join(guesses)}?")
    return OverrideError(f"{where}: unknown key (--help lists every key)")


def _unknown_option(group: str, option: str, overrides: list[str], groups: dict, dirs) -> OverrideError:
    options = sorted(groups[group])
    where = _argument(overrides, group)
    if group == "experiment":
        head = f"{where}: unknown experiment"
    else:
        head = f"{where}: no option {option} in group {group}"
    selecting = options_by_name(dirs, group).get(option)
    guesses = selecting or close_matches(option, options, n=1)
    hint = ""
    if selecting:
        hint = f"; {group} {option!r} is registered, selected by " + " or ".join(f"{group}={o}" for o in selecting)
    elif guesses:
        hint = f"; did you mean {' or '.join(f'{group}={g}' for g in guesses)}?"
    listing = "experiments" if group == "experiment" else "options"
    return OverrideError(f"{head}{hint} ({listing}: {', '.join(options)}; melforge-plugins lists them)")
