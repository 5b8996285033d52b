"""``melforge-plugins``: list every registered entry per kind with the plugin that provided it.

    melforge-plugins            # table; broken third-party plugins are reported and skipped,
                                # names registered by two plugins are listed and marked COLLISION
    melforge-plugins --strict   # fail on the first plugin that does not load, or collides
    melforge-plugins --no-cache # load every plugin now (the default reads a listing cached for
                                # the installed code: keyed by every plugin file's size and mtime)
"""

from __future__ import annotations

import argparse
import sys

from melforge.core.listing_cache import cached_listing
from melforge.core.plugins import PluginLoadError, load_registries


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (1 if a plugin failed or two plugins
    registered one name, in strict mode; otherwise 0, with both listed)."""
    parser = argparse.ArgumentParser(prog="melforge-plugins", description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail on the first plugin that does not load or registers a name another plugin has")
    parser.add_argument("--no-cache", action="store_true", help="load every plugin now instead of reading the listing "
                        "cached for the installed code (the cache is keyed by every plugin file's size and mtime)")
    args = parser.parse_args(argv)
    if not args.strict and not args.no_cache:
        print(cached_listing()[0])
        return 0
    from melforge.core.plugin_listing import (
        format_table,  # deferred: importing melforge.core.plugin_listing takes 142 ms; start-up does not pay for it
    )
    try:
        regs = load_registries(strict=args.strict)
    except PluginLoadError as exc:
        print(f"melforge-plugins: {exc}", file=sys.stderr)
        return 1
    print(format_table(regs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
