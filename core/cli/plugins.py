"""``melforge-plugins``: list every registered entry per kind with the plugin that provided it.

    melforge-plugins            # table; broken third-party plugins are reported and skipped
    melforge-plugins --strict   # fail on the first plugin that does not load
"""

from __future__ import annotations

import argparse
import sys

from melforge.core.plugins import KINDS, PluginLoadError, load_registries


def format_table(regs) -> str:
    """The listing as text: one section per kind, ``name  plugin  description`` rows; each
    sampler also gets a ``supports:`` row (backbone and head families, devices, speed rank)."""
    lines = []
    for kind in KINDS:
        entries = regs.of(kind).entries()
        lines.append(f"{kind} ({len(entries)})")
        width = max((len(e.name) for e in entries), default=0)
        pwidth = max((len(e.plugin) for e in entries), default=0)
        for e in entries:
            lines.append(f"  {e.name:<{width}}  {e.plugin:<{pwidth}}  {e.description}")
            if kind == "sampler":  # what the sampler declares it supports
                lines.append(f"  {'':<{width}}  {'':<{pwidth}}  supports: {e.factory.support_summary()}")
    if regs.failures:
        lines.append("skipped plugins")
        for f in regs.failures:
            lines.append(f"  {f.plugin}: {f.error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (1 if a plugin failed in strict mode)."""
    parser = argparse.ArgumentParser(prog="melforge-plugins", description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail on the first plugin that does not load")
    args = parser.parse_args(argv)
    try:
        regs = load_registries(strict=args.strict)
    except PluginLoadError as exc:
        print(f"melforge-plugins: {exc}", file=sys.stderr)
        return 1
    print(format_table(regs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
