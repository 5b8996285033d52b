"""The text ``melforge-plugins`` prints: every registered entry per kind with the plugin that
provided it, what each sampler supports, skipped plugins and name collisions."""

from __future__ import annotations

from .plugins import KINDS


def format_table(regs) -> str:
    """The listing as text: one section per kind, ``name  plugin  description`` rows; each
    sampler also gets a ``supports:`` row (backbone and head families, devices, speed rank), and
    a name registered by more than one plugin a ``COLLISION:`` row naming the others. Skipped
    plugins and name collisions are summed up at the end."""
    lines = []
    for kind in KINDS:
        registry = regs.of(kind)
        entries = registry.entries()
        lines.append(f"{kind} ({len(entries)})")
        width = max((len(e.name) for e in entries), default=0)
        pwidth = max((len(e.plugin) for e in entries), default=0)
        pad = f"  {'':<{width}}  {'':<{pwidth}}  "
        for e in entries:
            lines.append(f"  {e.name:<{width}}  {e.plugin:<{pwidth}}  {_describe(e)}")
            if kind == "sampler":  # what the sampler declares it supports
                lines.append(f"{pad}supports: {_supports(e)}")
            if e.name in registry.collisions:
                others = " and ".join(registry.collisions[e.name][1:])
                lines.append(f"{pad}COLLISION: also registered by {others}; a command that uses {e.name!r} fails")
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
