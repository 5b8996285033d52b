"""Typed registries: one per kind of part (representation, backbone, head, sampler, inverter, dataset).

A registry maps a name (``"log_mel"``, ``"melnet"``, ...) to a factory (usually a class) and to
the plugin that registered it. Registries are filled by pluggy hooks (see
:mod:`melforge.core.hookspecs`); each hook implementation receives a :class:`Registrar`, a view
of the registry bound to that plugin's name, so every entry knows where it came from.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(Exception):
    """Base class of the errors raised by registries."""


class UnknownEntryError(RegistryError, KeyError):
    """A name was looked up that no plugin registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateEntryError(RegistryError):
    """Two plugins registered the same name and it was used (looked up, built or checked); the
    message names every registrant."""


class EntryConfigError(RegistryError, TypeError):
    """A config for an entry holds a key its factory does not accept, or lacks a required one."""


class LazyImportError(RegistryError, ImportError):
    """A factory registered as ``"package.module:attr"`` could not be imported or is not a valid
    factory; the message names the entry, its plugin and the target."""


def import_target(target: str) -> Any:
    """The object ``"package.module:attr"`` names (``attr`` may be dotted: ``"m:Class.method"``).

    Raises:
        ImportError, AttributeError: the module or attribute is not there.
        ValueError: ``target`` is not of that form.
    """
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{target!r} is not 'package.module:attr'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered part.

    Attributes:
        kind: the registry's kind, e.g. ``"backbone"``.
        name: the name configs use, e.g. ``"melnet"``.
        target: what was registered: a callable (usually a subclass of the registry's base)
            returning a ``T``, or ``"package.module:attr"`` naming one, imported on first use
            of :attr:`factory` (so that listing or starting a command imports no part's module).
        plugin: the name of the plugin that registered it (a module name for built-ins, the
            distribution name for third-party packages).
        validate: checks a lazily imported factory as :meth:`Registry.register` checks an
            eager one (raises ``TypeError``).
    """

    kind: str
    name: str
    target: Callable[..., T] | str
    plugin: str
    validate: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def factory(self) -> Callable[..., T]:
        """The factory: :attr:`target` itself, or the object it names, imported now (once).

        Raises:
            LazyImportError: the named module or attribute is missing, or it is not a valid
                factory for this registry (names the entry, the plugin and the target).
        """
        if not isinstance(self.target, str):
            return self.target
        try:
            factory = import_target(self.target)
            if self.validate is not None:
                self.validate(factory)
        except Exception as exc:  # noqa: BLE001 - whatever the import raises, named on one line
            raise LazyImportError(
                f"{self.kind} {self.name!r} from {self.plugin}: cannot use {self.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return factory

    @property
    def description(self) -> str:
        """The first sentence of the factory's docstring (its first paragraph up to the first
        full stop, never cut mid-sentence), reST backticks removed; an empty string without one."""
        return first_sentence(inspect.getdoc(self.factory) or "")


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line, without backticks:
    ``"Re-runs ``forward`` on\nthe whole input. More."`` → ``"Re-runs forward on the whole input."``."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    paragraph = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"\1", paragraph).replace("`", "")  # :class:`~a.B` → B
    depth = 0
    for i, ch in enumerate(paragraph):
        depth += 1 if ch in "([" else -1 if ch in ")]" else 0
        if depth == 0 and ch == "." and (i + 1 == len(paragraph) or paragraph[i + 1] == " ") and not _abbreviation(paragraph[:i]):
            return paragraph[: i + 1]
    return paragraph


def _abbreviation(text: str) -> bool:
    """Whether the word before a full stop is an abbreviation (``et al``, ``e.g``, ``eq``, …)."""
    word = text.rsplit(" ", 1)[-1].lower()
    return word in {"al", "e.g", "i.e", "eq", "cf", "vs", "fig", "approx"} or len(word) == 1


class Registry(Generic[T]):
    """Name → factory table for one kind of part, typed by a base class.

    Args:
        kind: what the registry holds, e.g. ``"inverter"`` (used in error messages).
        base: the class every created object must be an instance of; a factory that is a class
            must subclass it. ``"package.module:Class"`` imports it on first need (the base
            classes of backbones and heads are torch modules: a command that only lists or
            inverts does not import torch for them).
        classes_only: factories must be subclasses of ``base`` (not other callables), for
            kinds whose entries declare facts as class attributes (samplers).
        check: called with each built object; raises ``AttributeError`` naming what is missing.
    """

    def __init__(self, kind: str, base: type[T] | str, *, classes_only: bool = False,
                 check: Callable[[T], None] | None = None):
        self.kind = kind
        self._base = base
        self.classes_only = classes_only
        #: Called with every object :meth:`create` builds (e.g. ``Head.check_declared``: the
        #: attributes the base class declares are set); raises naming what is wrong.
        self.check = check
        self._entries: dict[str, Entry[T]] = {}
        #: Names registered more than once → every registrant, first (the listed entry) first.
        #: Using such a name (:meth:`get`, :meth:`create`, :meth:`build`, :meth:`check_config`)
        #: raises :class:`DuplicateEntryError`; listing it (:meth:`names`, :meth:`entries`) does not.
        self.collisions: dict[str, list[str]] = {}

    def empty_copy(self) -> "Registry[T]":
        """A registry of the same kind, base, ``classes_only`` and check, with no entries (a
        plugin's registrations are staged in one before they are added)."""
        return Registry(self.kind, self._base, classes_only=self.classes_only, check=self.check)

    @property
    def base(self) -> type[T]:
        """The base class (imported now if it was given as ``"package.module:Class"``)."""
        if isinstance(self._base, str):
            self._base = import_target(self._base)
        return self._base

    def register(self, name: str, factory: Callable[..., T] | str, *, plugin: str = "<direct>") -> Entry[T]:
        """Add ``name`` → ``factory``.

        ``factory`` may be ``"package.module:attr"``: nothing is imported now; the entry's
        :attr:`Entry.factory` imports and checks it on first use (building, checking a config,
        describing it), so a plugin that registers this way costs nothing to load.

        A name that is already registered is not replaced: the first entry stays listed, the
        collision is recorded in :attr:`collisions` (every registrant) and any later use of the
        name raises :class:`DuplicateEntryError` naming them all. Returns the listed entry.

        Raises:
            TypeError: ``name`` is not a non-empty string, or ``factory`` is a class that does not
                subclass ``base``, or is not callable, or a string not of the form above.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r} from {plugin}")
        if isinstance(factory, str):
            if factory.count(":") != 1 or not all(factory.split(":")):
                raise TypeError(f"{self.kind} {name!r} from {plugin}: {factory!r} is not 'package.module:attr'")
            return self._add(Entry(self.kind, name, factory, plugin, functools.partial(self._check_factory, name, plugin)))
        self._check_factory(name, plugin, factory)
        return self._add(Entry(self.kind, name, factory, plugin))

    def _add(self, entry: Entry[T]) -> Entry[T]:
        """List ``entry``, or record a collision with the entry already listed under its name."""
        if entry.name in self._entries:
            self.collisions.setdefault(entry.name, [self._entries[entry.name].plugin]).append(entry.plugin)
            return self._entries[entry.name]
        self._entries[entry.name] = entry
        return entry

    def _check_factory(self, name: str, plugin: str, factory: Any) -> None:
        """Raise ``TypeError`` unless ``factory`` can be registered here (see :meth:`register`)."""
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} from {plugin}: factory {factory!r} is not callable")
        if self.classes_only and not inspect.isclass(factory):
            raise TypeError(
                f"{self.kind} {name!r} from {plugin}: register a subclass of "
                f"{self.base.__module__}.{self.base.__qualname__}, got {factory!r}"
            )
        if inspect.isclass(factory) and not issubclass(factory, self.base):
            raise TypeError(
                f"{self.kind} {name!r} from {plugin}: {factory.__qualname__} does not subclass "
                f"{self.base.__module__}.{self.base.__qualname__}"
            )

    def collision_message(self, name: str) -> str:
        """``"head 'x' is registered by more than one plugin: by a and by b"`` for a colliding name."""
        plugins = self.collisions[name]
        return f"{self.kind} {name!r} is registered by more than one plugin: by {' and by '.join(plugins)}"

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``.

        Raises:
            UnknownEntryError: no such name; the message lists the known names.
            DuplicateEntryError: several plugins registered ``name`` (names them all).
        """
        if name in self.collisions:
            raise DuplicateEntryError(
                f"{self.collision_message(name)}; uninstall one of them or use another {self.kind}"
            )
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownEntryError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory of ``name`` with ``kwargs`` and check the result's type.

        Raises:
            UnknownEntryError: no such name.
            DuplicateEntryError: several plugins registered ``name``.
            EntryConfigError: a keyword the factory does not accept, or a missing required one
                (the message names the key and the entry).
            TypeError: the factory returned something that is not a ``base``.
        """
        entry = self.get(name)
        _check_kwargs(entry, kwargs)
        obj = entry.factory(**kwargs)
        if not isinstance(obj, self.base):
            raise TypeError(
                f"{self.kind} {name!r} from {entry.plugin} returned {type(obj).__qualname__}, "
                f"expected a {self.base.__qualname__}"
            )
        if self.check is not None:
            try:
                self.check(obj)
            except AttributeError as exc:  # a declared attribute is missing: say which part lacks it
                raise type(exc)(f"{self.kind} {name!r} from {entry.plugin}: {exc}") from None
        return obj

    def build(self, cfg: Mapping[str, Any], /, **extra: Any) -> T:
        """Create from a config mapping with a ``name`` key; the other keys (and ``extra``) are
        the factory's keyword arguments.

        Raises:
            EntryConfigError: ``cfg`` has no ``name`` key, or see :meth:`create`.
        """
        if "name" not in cfg:
            raise EntryConfigError(f"{self.kind} config needs a 'name' key (one of: {', '.join(self.names())})")
        kwargs = {k: v for k, v in cfg.items() if k != "name"}
        kwargs.update(extra)
        return self.create(str(cfg["name"]), **kwargs)

    def check_config(self, cfg: Mapping[str, Any], /, *, where: str | None = None) -> Entry[T]:
        """Check, without building anything, that ``cfg`` names a registered entry and holds
        only keys its factory accepts (``where`` names the config group in messages, default
        the kind). Returns the entry.

        Raises:
            EntryConfigError: no ``name`` key, or a key the factory does not accept.
            UnknownEntryError: an unknown ``name``.
            DuplicateEntryError: a ``name`` several plugins registered (names them all).
        """
        where = where or self.kind
        if "name" not in cfg:
            raise EntryConfigError(f"{where}: needs a 'name' key (one of: {', '.join(self.names())})")
        entry = self.get(str(cfg["name"]))
        accepted = _accepted(entry)
        if accepted is not None:
            unknown = sorted(set(cfg) - {"name"} - accepted)
            if unknown:
                raise EntryConfigError(
                    f"{where}.{unknown[0]}: {self.kind} {entry.name!r} ({entry.plugin}) has no option "
                    f"{', '.join(repr(u) for u in unknown)}; its options are: {', '.join(sorted(accepted)) or '(none)'}"
                )
        return entry

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """Registered entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


class Registrar(Generic[T]):
    """What a hook implementation receives: ``registry.register(name, factory)`` records the
    calling plugin as the registrant. Read access (``names``, ``get``, ``in``) passes through."""

    def __init__(self, registry: Registry[T], plugin: str):
        self._registry = registry
        self.plugin = plugin
        self.kind = registry.kind

    @property
    def base(self) -> type[T]:
        """The registry's base class."""
        return self._registry.base

    def register(self, name: str, factory: Callable[..., T] | str) -> Entry[T]:
        """Register ``factory`` under ``name`` on behalf of this plugin (see :meth:`Registry.register`)."""
        return self._registry.register(name, factory, plugin=self.plugin)

    def names(self) -> list[str]:
        return self._registry.names()

    def get(self, name: str) -> Entry[T]:
        return self._registry.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._registry


def _accepted(entry: Entry[Any]) -> set[str] | None:
    """Keyword arguments the factory accepts (``None``: any, or unknown)."""
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_kwargs(entry: Entry[Any], kwargs: Mapping[str, Any]) -> None:
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    accepted = _accepted(entry)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise EntryConfigError(
                f"{entry.kind} {entry.name!r} ({entry.plugin}) has no option "
                f"{', '.join(repr(u) for u in unknown)}; its options are: {', '.join(sorted(accepted)) or '(none)'}"
            )
    missing = sorted(
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in kwargs
    )
    if missing:
        raise EntryConfigError(
            f"{entry.kind} {entry.name!r} ({entry.plugin}) needs option(s) {', '.join(repr(m) for m in missing)}"
        )
