"""Typed schemas of the apps' own config sections, checked before any work is done.

Each section is a dataclass whose fields carry their type and range; :func:`validate` checks a
resolved config against it — unknown keys, types, ranges — and raises :class:`ConfigError`
naming the key, the value and what was expected. The parts' sections (``representation``,
``backbone``, …) are checked against their registered factories by
:func:`melforge.core.registry.Registry.check_config`.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union


class ConfigError(ValueError):
    """A config value of the wrong type, out of range, or a key no schema knows (the message
    names the key, the value and what was expected)."""


def _range(
    ge: float | None = None, gt: float | None = None, lt: float | None = None, doc: str = "",
    choices: tuple[str, ...] | None = None,
) -> Any:
    return field(default=None, metadata={"ge": ge, "gt": gt, "lt": lt, "doc": doc, "choices": choices})


#: ``device`` values: ``cuda:N`` stands for ``cuda:0``, ``cuda:1``, … (checked by
#: :func:`melforge.core.device.check_device_name`).
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: ``precision`` values (:mod:`melforge.core.precision`).
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class DivergenceSection:
    window: int = _range(ge=1, doc="recent steps whose median and spread are the reference")
    threshold: float = _range(gt=0, doc="robust standard deviations above the median that count as divergence")
    min_excess: float = _range(gt=0, doc="nats per element above the median that always count")


@dataclass
class TrainSection:
    max_steps: int = _range(ge=0, doc="the step training ends at")
    batch_size: int = _range(ge=1, doc="crops per update")
    grad_clip: float = _range(gt=0, doc="gradient-norm clipping threshold")
    log_every: int = _range(ge=1, doc="steps between training-NLL log points")
    valid_every: int = _range(ge=1, doc="steps between validation passes")
    checkpoint_every: int = _range(ge=1, doc="steps between checkpoints")
    keep_checkpoints: int = _range(ge=1, doc="step_*.pt files kept")
    resume: bool = _range(doc="continue from <run dir>/checkpoints/last.pt")
    max_seconds: Optional[float] = _range(gt=0, doc="wall-clock budget of one call, seconds; null: none")
    divergence: DivergenceSection = _range()


@dataclass
class DataSection:
    crop_frames: int = _range(ge=1, doc="the longest training crop, frames (samples for a waveform); shorter clips are used whole")
    min_frames: Optional[int] = _range(ge=1, doc="skip clips with fewer frames; null: the tiers' time factor")
    buckets: int = _range(ge=1, doc="length buckets that batches are drawn from")
    speaker_conditioning: bool = _range(doc="condition on a one-hot speaker vector")
    valid_fraction: float = _range(gt=0, lt=1, doc="share of clips held out for validation")
    valid_crops: Optional[int] = _range(ge=1, doc="validation pieces kept; null: every piece of every validation clip")
    trim_db: Optional[float] = _range(gt=0, doc="trim silence below this many dB under the peak; null keeps it")


@dataclass
class SampleSection:
    count: int = _range(ge=0, doc="samples drawn (0: none)")
    frames: int = _range(ge=1, doc="frames (samples for a waveform) per sample")
    temperature: Union[float, list[float]] = _range(gt=0, doc="one value or one per tier, > 0")
    seed: int = _range(doc="sampling RNG seed")
    prime_frames: int = _range(ge=0, doc="real frames to continue (priming)")
    prime_audio: Optional[str] = _range(doc="audio file to prime from")
    speaker: Optional[str] = _range(doc="speaker label of a conditioned model")


@dataclass
class TiersSection:
    layers: Optional[list[int]] = _range(ge=1, doc="layers per tier")
    train: Optional[Union[int, list[int]]] = _range(ge=1, doc="1-based tiers this run updates")


@dataclass
class TrainApp:
    """``melforge-train``'s own keys (the parts' groups are checked by their registries)."""

    seed: int = _range(doc="model initialisation and batch RNG seed")
    threads: int = _range(ge=1, doc="torch CPU threads")
    trains: Optional[str] = _range(doc="what the run fits: model (the default: backbone + head) or inverter (a trainable inverter, e.g. pg_vocoder)")
    device: str = _range(doc="auto (CUDA when available), cpu, cuda, cuda:N or mps", choices=DEVICES)
    precision: str = _range(doc="fp32, bf16 or fp16 (autocast; NLL in fp32)", choices=PRECISIONS)
    tiers: TiersSection = _range()
    data: DataSection = _range()
    train: TrainSection = _range()
    sample: SampleSection = _range()


@dataclass
class SampleApp:
    """``melforge-sample``'s own keys."""

    checkpoint: Optional[str] = _range(doc="a .pt written by melforge-train")
    threads: Optional[int] = _range(ge=1, doc="torch CPU threads; null: the checkpoint's setting")
    device: str = _range(doc="auto (CUDA when available), cpu, cuda, cuda:N or mps", choices=DEVICES)
    sample: SampleSection = _range()


#: Part groups: present in the apps' configs, checked by the registries instead.
PART_SECTIONS = ("representation", "dataset", "backbone", "head", "sampler", "optimizer", "inverter")


def validate(cfg: Mapping[str, Any], schema: type, prefix: str = "", ignore: tuple[str, ...] = PART_SECTIONS) -> None:
    """Check ``cfg`` against the dataclass ``schema``.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range (names it).
    """
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if not prefix and key in ignore:
            continue
        if key not in fields:
            raise ConfigError(f"{name}: unknown key (known keys here: {', '.join(fields)})")
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}={value!r}: expected a section of keys {', '.join(f.name for f in dataclasses.fields(expected))}")
            validate(value, expected, name + ".", ignore)
            continue
        _check_value(name, value, expected, fields[key].metadata)


def _check_value(name: str, value: Any, expected: Any, meta: Mapping[str, Any]) -> None:
    options = typing.get_args(expected) if typing.get_origin(expected) is Union else (expected,)
    if value is None:
        if type(None) in options:
            return
        raise ConfigError(f"{name}=null: expected {_describe(expected, meta)}")
    for option in options:
        if option is type(None):
            continue
        if typing.get_origin(option) is list:
            (item,) = typing.get_args(option)
            if isinstance(value, list) and value and all(_is(v, item) for v in value):
                for v in value:
                    _check_range(name, v, meta, expected)
                return
        elif _is(value, option):
            _check_range(name, value, meta, expected)
            return
    raise ConfigError(f"{name}={value!r}: expected {_describe(expected, meta)}")


def _is(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_range(name: str, value: Any, meta: Mapping[str, Any], expected: Any) -> None:
    choices = meta.get("choices")
    if choices and isinstance(value, str) and value not in choices:
        allowed = re.compile("^(" + "|".join(re.escape(c).replace("N", r"\d+") for c in choices) + ")$")
        if not allowed.match(value):
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    ge, gt, lt = meta.get("ge"), meta.get("gt"), meta.get("lt")
    if (ge is not None and value < ge) or (gt is not None and not value > gt) or (lt is not None and not value < lt):
        raise ConfigError(f"{name}={value!r}: expected {_describe(expected, meta)}")


def _describe(expected: Any, meta: Mapping[str, Any]) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}

    def one(t: Any) -> str:
        if typing.get_origin(t) is list:
            return f"a list of {one(typing.get_args(t)[0]).removeprefix('an ').removeprefix('a ')}s"
        return names.get(t, getattr(t, "__name__", str(t)))

    options = typing.get_args(expected) if typing.get_origin(expected) is Union else (expected,)
    text = " or ".join(one(t) for t in options)
    bounds = []
    if meta.get("ge") is not None:
        bounds.append(f">= {meta['ge']:g}")
    if meta.get("gt") is not None:
        bounds.append(f"> {meta['gt']:g}")
    if meta.get("lt") is not None:
        bounds.append(f"< {meta['lt']:g}")
    if bounds:
        text += " " + " and ".join(bounds)
    if meta.get("doc"):
        text += f" ({meta['doc']})"
    return text
