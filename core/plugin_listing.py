"""The text ``melforge-plugins`` prints: every registered entry per kind with the plugin that
provided it, the config options that select it, what each sampler supports, the experiments
with their purpose, skipped plugins and name collisions."""

from __future__ import annotations

import textwrap

from .config_options import config_dirs, group_options, options_by_name, purpose
from .plugins import KINDS

#: Columns the listing wraps at.
WIDTH = 100
_INDENT = " " * 6


def format_table(regs) -> str:
    """The listing as text, at most :data:`WIDTH` columns a line where words allow.

    One section per kind: a ``name  plugin`` row per entry, then, indented, its description
    (the first sentence of its docstring), ``select:`` the overrides that pick it
    (``dataset=asterisk_en``: the config file's name, not the registered name), for samplers a
    ``supports:`` row (backbone and head families, devices, speed rank), and for a name
    registered by more than one plugin a ``COLLISION:`` row naming the others. Then the
    experiments (``experiment=NAME`` and the first sentence of its comment), skipped plugins and
    name collisions."""
    dirs = config_dirs(list(regs.config_searchpath))
    lines = []
    for kind in KINDS:
        registry = regs.of(kind)
        entries = registry.entries()
        selecting = options_by_name(dirs, kind)
        lines.append(f"{kind} ({len(entries)})")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            lines.append(f"  {e.name:<{width}}  {e.plugin}")
            lines += _wrapped(_describe(e))
            options = selecting.get(e.name)
            lines += _wrapped("select: " + (", ".join(f"{kind}={o}" for o in options) if options
                                            else f"no config file selects it (give {kind}.name={e.name} and its keys)"))
            if kind == "sampler":  # what the sampler declares it supports
                lines += _wrapped(f"supports: {_supports(e)}")
            if e.name in registry.collisions:
                others = " and ".join(registry.collisions[e.name][1:])
                lines += _wrapped(f"COLLISION: also registered by {others}; a command that uses {e.name!r} fails")
    lines += _experiments(dirs)
    if regs.failures:
        lines.append("skipped plugins")
        for f in regs.failures:
            lines.append(f"  {f.plugin}: {f.error}")
    collisions = regs.collisions()
    if collisions:
        lines.append("name collisions (a command that uses one of these names fails; the others run)")
        for kind, name, plugins in collisions:
            lines.append(f"  {kind} {name!r}: {', '.join(plugins)}")
    return "\n".join(lines)


def _experiments(dirs) -> list[str]:
    """``experiment (N)`` and a row per experiment: ``experiment=NAME`` and its purpose."""
    experiments = group_options(dirs).get("experiment", {})
    lines = [f"experiment ({len(experiments)}): melforge-train experiment=NAME"]
    for name, path in experiments.items():
        lines.append(f"  {name}")
        lines += _wrapped(purpose(path))
    return lines


def _wrapped(text: str) -> list[str]:
    """``text`` wrapped at :data:`WIDTH` columns under the listing's indent (never cut)."""
    if not text:
        return []
    return textwrap.wrap(text, WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT + "  ",
                         break_long_words=False, break_on_hyphens=False)


def _describe(entry) -> str:
    """The entry's description; a plugin whose docstring cannot be read does not break the listing."""
    try:
        return entry.description
    except Exception as exc:  # noqa: BLE001
        return f"<no description: {type(exc).__name__}: {exc}>"


def _supports(entry) -> str:
    try:
        return entry.factory.support_summary()
    except Exception as exc:  # noqa: BLE001 - a plugin's bad declaration is shown, not fatal
        return f"<unreadable: {type(exc).__name__}: {exc}>"
