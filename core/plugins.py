"""Plugin loading: built-ins and third-party entry points fill the registries through pluggy.

``load_registries()`` builds a fresh :class:`Registries`; ``registries()`` returns a process-wide
cached one (what the command-line tools use).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from .hookspecs import PROJECT, MelforgeSpecs
from .registry import DuplicateEntryError, Registrar, Registry

ENTRY_POINT_GROUP = "melforge"

#: Modules of the built-in plugins, loaded exactly as a third-party plugin would be.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "melforge.plugins.representations.plugin",
    "melforge.plugins.melnet.plugin",
    "melforge.plugins.gmm.plugin",
    "melforge.plugins.samplers.plugin",
    "melforge.plugins.categorical.plugin",
    "melforge.plugins.wavenet.plugin",
    "melforge.plugins.pg_vocoder.plugin",
    "melforge.plugins.gan_vocoders.plugin",
    "melforge.plugins.source_filter.plugin",
    "melforge.inverters.plugin",
    "melforge.datasets.plugin",
)

KINDS: tuple[str, ...] = ("representation", "backbone", "head", "sampler", "inverter", "dataset")


class PluginLoadError(RuntimeError):
    """A plugin could not be imported or registered, or two registered the same name (raised in
    strict mode; otherwise warned)."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped: its name (distribution name for entry points) and the error."""

    plugin: str
    error: str


@dataclass
class Registries:
    """One registry per kind of part, plus the plugins that were skipped while filling them."""

    representation: Registry
    backbone: Registry
    head: Registry
    sampler: Registry
    inverter: Registry
    dataset: Registry
    plugins: list[str] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    #: Hydra search-path entries (``"pkg://my_pkg.configs"``) from ``melforge_config_searchpath``,
    #: in plugin loading order; :func:`melforge.core.config_search.searchpath_override` uses them.
    config_searchpath: list[str] = field(default_factory=list)

    def collisions(self) -> list[tuple[str, str, list[str]]]:
        """``(kind, name, plugins)`` of every name registered by more than one plugin."""
        return [(kind, name, list(plugins)) for kind in KINDS for name, plugins in sorted(self.of(kind).collisions.items())]

    def of(self, kind: str) -> Registry:
        """The registry for ``kind`` (one of :data:`KINDS`).

        Raises:
            KeyError: ``kind`` is not a known kind.
        """
        if kind not in KINDS:
            raise KeyError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")
        return getattr(self, kind)


def _new_registries() -> Registries:
    """Empty registries; the base classes are named, not imported (the backbone and head bases
    are torch modules: they are imported when a part of their kind is first registered eagerly
    or used)."""
    core = __name__.rpartition(".")[0]
    return Registries(
        representation=Registry("representation", f"{core}.representation:Representation"),
        backbone=Registry("backbone", f"{core}.backbone:Backbone", check=_declared),
        head=Registry("head", f"{core}.head:Head", check=_declared),
        sampler=Registry("sampler", f"{core}.sampler:Sampler", classes_only=True),
        inverter=Registry("inverter", f"{core}.inverter:Inverter"),
        dataset=Registry("dataset", f"{core}.dataset:AudioDataset"),
    )


def _declared(part: Any) -> None:
    """The check of a built backbone or head: the attributes its base class declares are set
    (``Backbone.check_declared``, ``Head.check_declared``; :mod:`melforge.core.declared`)."""
    part.check_declared()


def _fill(pm: pluggy.PluginManager, regs: Registries, plugin_name: str) -> list[tuple[str, str]]:
    """Call one plugin's hooks with registrars bound to it and add what they registered.

    Registration goes into a scratch copy first, so a plugin whose hooks fail adds nothing.
    Returns the ``(kind, name)`` pairs it registered that another plugin had registered already
    (the first entry stays listed; see :attr:`melforge.core.registry.Registry.collisions`).

    Raises:
        DuplicateEntryError: the plugin registers one name twice itself.
        BaseException: whatever its hooks raise.
    """
    plugin = pm.get_plugin(plugin_name)
    staged: list[tuple[str, str, Any]] = []
    for kind in KINDS:
        caller = getattr(pm.hook, f"melforge_register_{kind}")
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            target = regs.of(kind)
            scratch = target.empty_copy()
            impl.function(registry=Registrar(scratch, plugin_name))
            if scratch.collisions:
                raise DuplicateEntryError(f"{plugin_name} registers {kind} {next(iter(scratch.collisions))!r} twice")
            staged.extend((kind, e.name, e.target) for e in scratch.entries())  # a lazy target stays unimported
    searchpath = _config_searchpath(pm, plugin, plugin_name)
    clashes = []
    for kind, name, factory in staged:
        if name in regs.of(kind):
            clashes.append((kind, name))
        regs.of(kind).register(name, factory, plugin=plugin_name)
    regs.config_searchpath.extend(p for p in searchpath if p not in regs.config_searchpath)
    return clashes


def _config_searchpath(pm: pluggy.PluginManager, plugin: Any, plugin_name: str) -> list[str]:
    """What ``plugin``'s ``melforge_config_searchpath`` returns, as a list of strings.

    Raises:
        TypeError: it returned something other than a string, a list of strings or ``None``.
    """
    found: list[str] = []
    for impl in pm.hook.melforge_config_searchpath.get_hookimpls():
        if impl.plugin is not plugin:
            continue
        value = impl.function()
        values = [] if value is None else [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v for v in values):
            raise TypeError(
                f"{plugin_name}: melforge_config_searchpath must return a search-path string "
                f"(e.g. 'pkg://my_pkg.configs'), a list of them or None, got {value!r}"
            )
        found.extend(values)
    return found


def discover_entry_points(group: str = ENTRY_POINT_GROUP) -> list[importlib.metadata.EntryPoint]:
    """Every entry point in ``group`` of every installed distribution (the first on ``sys.path``
    wins for a distribution installed twice). Unlike ``importlib.metadata.entry_points``, two
    distributions may use the same entry-point name."""
    seen: set[str] = set()
    found = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        found.extend(ep for ep in dist.entry_points if ep.group == group)
    return found


def load_registries(
    *,
    strict: bool = False,
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
) -> Registries:
    """Build the registries from the built-in plugins, the ``melforge`` entry points and
    ``extra_plugins`` (``(name, module_or_object)`` pairs, e.g. for tests).

    Each plugin is imported and registered on its own: one that fails — any exception at
    import or registration, ``SystemExit`` included; only ``KeyboardInterrupt`` passes — is
    reported (a ``RuntimeWarning`` naming its distribution and the error) and skipped, unless
    ``strict``.

    A name that two plugins register is never silently resolved: the first entry stays listed,
    the registry records both (:attr:`melforge.core.registry.Registry.collisions`), a
    ``RuntimeWarning`` names them, and using that name raises
    :class:`~melforge.core.registry.DuplicateEntryError` naming both; the other names work.

    Raises:
        PluginLoadError: in strict mode, the first plugin that fails to load or register, or
            the first name collision.
    """
    regs = _new_registries()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(MelforgeSpecs)

    candidates: list[tuple[str, Any]] = []  # (plugin name, loader)
    for mod in builtins:
        candidates.append((mod, lambda mod=mod: importlib.import_module(mod)))
    if entry_points is None:
        entry_points = discover_entry_points()
    for ep in entry_points:
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else "<unknown distribution>"
        candidates.append((f"{dist_name}:{ep.name}", ep.load))
    for name, obj in extra_plugins:
        candidates.append((name, lambda obj=obj: obj))

    for name, loader in candidates:
        try:
            obj = loader()
            pm.register(obj, name=name)
            pm.check_pending()
            clashes = _fill(pm, regs, name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin (even sys.exit at import) must not take the host down
            _fail(regs, pm, name, exc, strict)
            continue
        regs.plugins.append(name)
        for kind, entry_name in clashes:
            _collide(regs, kind, entry_name, strict)
    return regs


def _fail(regs: Registries, pm: pluggy.PluginManager, name: str, exc: BaseException, strict: bool) -> None:
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    msg = f"melforge plugin {name} failed to load and was skipped: {type(exc).__name__}: {exc}"
    if strict:
        raise PluginLoadError(msg) from exc
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    regs.failures.append(PluginFailure(name, f"{type(exc).__name__}: {exc}"))


def _collide(regs: Registries, kind: str, name: str, strict: bool) -> None:
    msg = (
        f"melforge: {regs.of(kind).collision_message(name)}; a command that uses it fails, "
        "the others run (melforge-plugins lists both)"
    )
    if strict:
        raise PluginLoadError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def load_config_searchpath(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> list[str]:
    """The Hydra search-path entries of the installed plugins, without filling any registry:
    each ``melforge`` entry point is imported and only its ``melforge_config_searchpath`` hook
    called (the built-ins ship no config folder of their own). What ``--help`` and the start of
    every Hydra app need, without importing torch through the parts' modules.

    A plugin that fails here is left out silently: loading the registries (any command that
    uses a part, ``melforge-plugins``) reports it. Once the process has loaded its registries
    (:func:`registries`), their ``config_searchpath`` is returned instead.
    """
    if _CACHED is not None:
        return list(_CACHED.config_searchpath)
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(MelforgeSpecs)
    found: list[str] = []
    for ep in discover_entry_points() if entry_points is None else entry_points:
        dist = getattr(ep, "dist", None)
        name = f"{dist.name if dist is not None else '<unknown distribution>'}:{ep.name}"
        try:
            obj = ep.load()
            pm.register(obj, name=name)
            found.extend(p for p in _config_searchpath(pm, obj, name) if p not in found)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - reported when the registries are loaded
            continue
    return found


_CACHED: Registries | None = None


def registries(*, strict: bool = False) -> Registries:
    """The process-wide registries, loaded on first use (see :func:`load_registries`)."""
    global _CACHED
    if _CACHED is None:
        _CACHED = load_registries(strict=strict)
    return _CACHED
