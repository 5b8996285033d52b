"""Registry round trip: a registered name builds from a config and is listed by
``melforge-plugins``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from melforge.core.plugin_listing import format_table
from melforge.core.plugins import load_registries
from omegaconf import OmegaConf


def _config(name: str, config: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    if config is None:
        return {"name": name}
    if isinstance(config, (str, Path)):
        config = OmegaConf.to_container(OmegaConf.load(str(config)), resolve=True)
    cfg = dict(config)
    if cfg.setdefault("name", name) != name:
        raise AssertionError(f"the config names {cfg['name']!r}, expected {name!r}")
    return cfg


def listed_entries(table: str, kind: str) -> list[str]:
    """The rows of ``kind``'s section in :func:`melforge.core.cli.plugins.format_table` output."""
    rows: list[str] = []
    inside = False
    for line in table.splitlines():
        if not line.startswith(" "):
            inside = line.startswith(f"{kind} (")
        elif inside:
            rows.append(line.strip())
    return rows


def check_registered(
    kind: str,
    name: str,
    config: Mapping[str, Any] | str | Path | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    plugin: str | None = None,
    registries=None,
) -> Any:
    """Assert that ``name`` is registered as a ``kind``, builds from ``config`` and is listed.

    Asserted, on ``registries`` (default: a fresh ``load_registries()``, i.e. built-ins and
    installed plugins):

    * ``name`` is in the ``kind`` registry (the message lists the registered names and the
      plugins that were skipped, with their errors);
    * its plugin is ``plugin`` when given (the full name ``"dist-name:entry-point"``, or just the
      distribution's name);
    * ``Registry.build(config, **extra)`` succeeds — the config's keys are the factory's
      arguments — and returns an instance of the registry's base class
      (:class:`~melforge.core.backbone.Backbone` for backbones, …);
    * ``melforge-plugins`` (:func:`melforge.core.cli.plugins.format_table`) lists ``name`` with
      its plugin under ``kind``.

    Args:
        kind: ``"backbone"``, ``"head"``, ``"sampler"``, … (:data:`melforge.core.plugins.KINDS`).
        name: the registered name.
        config: a mapping with the factory's keyword arguments (``name`` optional), a path to a
            YAML config file (e.g. the plugin's ``configs/backbone/<name>.yaml``), or ``None``
            (no arguments).
        extra: more keyword arguments, as the runner adds them (e.g. ``in_features`` for a head,
            ``layers`` for a backbone).
        plugin: the expected registrant.
        registries: :class:`melforge.core.plugins.Registries` to check.

    Returns:
        The built object.

    Raises:
        AssertionError: a failed property, with the cause chained.
        KeyError: ``kind`` is not a kind of part.
    """
    if registries is None:
        registries = load_registries()
    registry = registries.of(kind)
    if name not in registry:
        skipped = "; ".join(f"{f.plugin}: {f.error}" for f in registries.failures) or "none"
        raise AssertionError(
            f"{kind} {name!r} is not registered; registered {kind}s: {', '.join(registry.names()) or '(none)'}; "
            f"skipped plugins: {skipped}"
        )
    entry = registry.get(name)
    if plugin is not None and plugin not in (entry.plugin, entry.plugin.split(":")[0]):
        raise AssertionError(f"{kind} {name!r} is registered by {entry.plugin!r}, expected {plugin!r}")
    cfg = _config(name, config)
    try:
        obj = registry.build(cfg, **dict(extra or {}))
    except Exception as exc:  # noqa: BLE001 - any failure to build is the finding
        raise AssertionError(f"{kind} {name!r} ({entry.plugin}) does not build from {cfg}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, registry.base):
        raise AssertionError(
            f"{kind} {name!r} ({entry.plugin}) built a {type(obj).__qualname__}, not a {registry.base.__qualname__}"
        )

    rows = listed_entries(format_table(registries), kind)
    if not any(row.split()[:2] == [name, entry.plugin] for row in rows if row):
        raise AssertionError(
            f"melforge-plugins does not list {kind} {name!r} from {entry.plugin}; its {kind} rows: {rows}"
        )
    return obj
