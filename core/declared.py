"""What a base class declares its subclasses set, and the errors that name what is missing.

A head written from a sketch that forgets ``self.in_features`` used to fail deep inside a
sampler with PyTorch's ``'LaplaceHead' object has no attribute 'in_features'``. The base classes
(:class:`melforge.core.head.Head`, :class:`melforge.core.backbone.Backbone`) list the attributes
each instance must have with their meaning; :func:`check_declared` (called when a registry builds
a part) and :func:`missing_attribute` (their ``__getattr__``) name the missing one, its meaning,
and where to set it.
"""

from __future__ import annotations

from collections.abc import Mapping


class MissingAttributeError(AttributeError):
    """A part lacks an attribute its base class declares (the message names it and its meaning)."""


def missing_attribute(obj: object, base: str, name: str, declared: Mapping[str, str]) -> AttributeError:
    """The error for reading ``obj.name`` that is not there: a :class:`MissingAttributeError`
    naming the base class, the attribute and its meaning when ``base`` declares ``name``, else
    Python's usual ``AttributeError``."""
    cls = type(obj).__name__
    if name in declared:
        return MissingAttributeError(
            f"{cls} has no attribute {name!r}, which every {base} sets: {declared[name]} "
            f"(set self.{name} in {cls}.__init__, after super().__init__())"
        )
    return AttributeError(f"{cls!r} object has no attribute {name!r}")


def check_declared(obj: object, base: str, declared: Mapping[str, str]) -> None:
    """Assert that ``obj`` has every attribute ``declared`` (name → meaning) by its base class.

    Raises:
        MissingAttributeError: names every missing attribute with its meaning.
    """
    missing = [name for name in declared if not _present(obj, name)]
    if missing:
        cls = type(obj).__name__
        what = "; ".join(f"{name}: {declared[name]}" for name in missing)
        raise MissingAttributeError(
            f"{cls} does not set {', '.join(missing)}, which every {base} sets ({what}); "
            f"set them in {cls}.__init__, after super().__init__()"
        )


def _present(obj: object, name: str) -> bool:
    try:
        object.__getattribute__(obj, name)
        return True
    except AttributeError:
        pass
    # nn.Module keeps parameters, buffers and submodules outside __dict__
    for table in ("_parameters", "_buffers", "_modules"):
        try:
            if name in object.__getattribute__(obj, table):
                return True
        except AttributeError:
            continue
    return False
