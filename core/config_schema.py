"""Typed schemas of the apps' own config sections: the single source of their defaults and types.

Each section is a dataclass whose fields carry their default, type and range. They are Hydra's
structured configs: :func:`store_schemas` registers them in Hydra's ``ConfigStore`` (the
``melforge.configs`` package does so when Hydra loads it), the apps' primary configs list the
schema first in their defaults, so a composed config starts from these defaults, and a key no
schema knows is refused at composition. :func:`validate` checks a resolved config's ranges
against the same fields and raises :class:`ConfigError` naming the key, the value and what was
expected; :func:`typed` gives the runner the section as a dataclass instance, so the code reads
``train.keep_checkpoints`` instead of restating a default. The parts' sections
(``representation``, ``backbone``, …) are checked against their registered factories by
:func:`melforge.core.registry.Registry.check_config`.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Union


class ConfigError(ValueError):
    """A config value of the wrong type, out of range, or a key no schema knows (the message
    names the key, the value and what was expected)."""


def _range(
    default: Any = None, ge: float | None = None, gt: float | None = None, lt: float | None = None, doc: str = "",
    choices: tuple[str, ...] | None = None, factory: Any = None, check: Any = None,
) -> Any:
    """A schema field: its default, range, one-line meaning, and ``check``, the precise type
    :func:`validate` checks where OmegaConf's structured configs can only hold ``Any`` (unions)."""
    meta = {"ge": ge, "gt": gt, "lt": lt, "doc": doc, "choices": choices, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _section(kind: type) -> Any:
    return field(default_factory=kind, metadata={})


def _part() -> Any:
    return field(default=None, metadata={"doc": "a part's config group, checked by its registry"})


#: ``device`` values: ``cuda:N`` stands for ``cuda:0``, ``cuda:1``, … (checked by
#: :func:`melforge.core.device.check_device_name`).
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: ``precision`` values (:mod:`melforge.core.precision`).
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class DivergenceSection:
    window: int = _range(50, ge=1, doc="recent steps whose median and spread are the reference")
    threshold: float = _range(10.0, gt=0, doc="robust standard deviations above the median that count as divergence")
    min_excess: float = _range(5.0, gt=0, doc="nats per element above the median that always count")


@dataclass
class TrainSection:
    max_steps: int = _range(1000, ge=0, doc="the step training ends at")
    batch_size: int = _range(8, ge=1, doc="crops per update (per rank under torchrun)")
    grad_clip: float = _range(1.0, gt=0, doc="gradient-norm clipping threshold")
    log_every: int = _range(10, ge=1, doc="steps between training log points")
    valid_every: int = _range(100, ge=1, doc="steps between validation passes")
    checkpoint_every: int = _range(100, ge=1, doc="steps between checkpoints")
    keep_checkpoints: int = _range(3, ge=1, doc="step_*.pt files kept")
    resume: bool = _range(True, doc="continue from <run dir>/checkpoints/last.pt when it exists")
    max_seconds: Optional[float] = _range(gt=0, doc="wall-clock budget of one call, seconds: stop, validate and checkpoint when spent; null: none")
    divergence: DivergenceSection = _section(DivergenceSection)


@dataclass
class DataSection:
    crop_frames: int = _range(64, ge=1, doc="the longest training crop, frames (samples for a waveform); shorter clips are used whole")
    min_frames: Optional[int] = _range(ge=1, doc="skip clips with fewer frames; null: the tiers' time factor")
    buckets: int = _range(8, ge=1, doc="length buckets that batches are drawn from")
    speaker_conditioning: bool = _range(False, doc="condition every tier on a one-hot speaker vector (seed 000 §4.3)")
    valid_fraction: float = _range(0.05, gt=0, lt=1, doc="share of clips held out for validation (by a hash of the clip id)")
    valid_crops: Optional[int] = _range(ge=1, doc="validation pieces kept; null: every piece of every validation clip")
    trim_db: Optional[float] = _range(60.0, gt=0, doc="trim silence below this many dB under the peak; null keeps it")


@dataclass
class SampleSection:
    count: int = _range(1, ge=0, doc="samples drawn (0: none)")
    frames: int = _range(128, ge=1, doc="frames (samples for a waveform) per sample")
    temperature: Any = _range(1.0, gt=0, check=Union[float, list[float]], doc="one value or one per tier, > 0 (< 1 biases towards the modes, seed 000 §6)")
    seed: int = _range(0, doc="sampling RNG seed")
    prime_frames: int = _range(0, ge=0, doc="real frames to continue (priming, §6; 0: unprimed)")
    prime_audio: Optional[str] = _range(doc="audio file to prime from; null: the first validation clip")
    speaker: Optional[str] = _range(doc="speaker label of a conditioned model; null: cycle through the speakers")


@dataclass
class TiersSection:
    layers: Optional[Any] = _range(ge=1, check=Optional[list[int]], doc="layers per tier, initial tier first (Table 2's 12 / 5-4-3-2-2 is [12, 5, 4, 3, 2, 2]); null: one tier of backbone.layers")
    train: Optional[Any] = _range(ge=1, check=Optional[Union[int, list[int]]], doc="1-based tiers this run updates, e.g. [1] or [2, 3]; null: all")


@dataclass
class TrainApp:
    """``melforge-train``'s own keys (the parts' groups are checked by their registries)."""

    seed: int = _range(0, doc="model initialisation and batch RNG seed")
    threads: int = _range(2, ge=1, doc="torch CPU threads")
    trains: str = _range("model", doc="what the run fits: model (backbone + head) or inverter (a trainable inverter, e.g. pg_vocoder)", choices=("model", "inverter"))
    device: str = _range("auto", doc="auto (CUDA when available), cpu, cuda, cuda:N or mps", choices=DEVICES)
    precision: str = _range("fp32", doc="fp32, bf16 or fp16 (autocast; fp16 adds a gradient scaler; NLL in fp32)", choices=PRECISIONS)
    data: DataSection = _section(DataSection)
    train: TrainSection = _section(TrainSection)
    tiers: Optional[TiersSection] = _range(doc="a model run's tiers (the tiers group; absent when an inverter trains)")
    sample: Optional[SampleSection] = _range(doc="a model run's final samples (the sampling group; absent when an inverter trains)")
    representation: Optional[Dict[str, Any]] = _part()
    dataset: Optional[Dict[str, Any]] = _part()
    backbone: Optional[Dict[str, Any]] = _part()
    head: Optional[Dict[str, Any]] = _part()
    sampler: Optional[Dict[str, Any]] = _part()
    optimizer: Optional[Dict[str, Any]] = _part()
    inverter: Optional[Dict[str, Any]] = _part()


@dataclass
class SampleApp:
    """``melforge-sample``'s own keys."""

    checkpoint: Optional[str] = _range(doc="a .pt written by melforge-train (required)")
    threads: Optional[int] = _range(ge=1, doc="torch CPU threads; null: the checkpoint's setting")
    device: str = _range("auto", doc="auto (CUDA when available), cpu, cuda, cuda:N or mps: the model is loaded and sampled there", choices=DEVICES)
    sample: SampleSection = _section(SampleSection)
    sampler: Optional[Dict[str, Any]] = _part()
    inverter: Optional[Dict[str, Any]] = _part()


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
        expected = fields[key].metadata.get("check") or hints[key]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}={value!r}: expected a section of keys {', '.join(f.name for f in dataclasses.fields(expected))}")
            validate(value, expected, name + ".", ignore)
            continue
        if _section_type(expected) is not None and value is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}={value!r}: expected a section of keys {', '.join(f.name for f in dataclasses.fields(_section_type(expected)))}")
            validate(value, _section_type(expected), name + ".", ignore)
            continue
        _check_value(name, value, expected, fields[key].metadata)


def _section_type(expected: Any) -> type | None:
    """The dataclass of an ``Optional[Section]`` field (else ``None``)."""
    options = [t for t in typing.get_args(expected) if t is not type(None)] if typing.get_origin(expected) is Union else []
    return options[0] if len(options) == 1 and dataclasses.is_dataclass(options[0]) else None


def typed(kind: type, section: Mapping[str, Any] | None) -> Any:
    """``section`` (a resolved config section, or ``None``) as an instance of the dataclass
    ``kind``, nested sections too; keys it lacks take the schema's defaults."""
    hints = typing.get_type_hints(kind)
    values = {}
    for f in dataclasses.fields(kind):
        if section is None or f.name not in section:
            continue
        sub = _section_type(hints[f.name]) or (hints[f.name] if dataclasses.is_dataclass(hints[f.name]) else None)
        values[f.name] = typed(sub, section[f.name]) if sub is not None and section[f.name] is not None else section[f.name]
    return kind(**values)


#: Sections a run may not have: an inverter run has no model, sampler, tiers or samples.
OPTIONAL_SECTIONS = ("backbone", "head", "sampler", "tiers", "sample")


def drop_absent(cfg: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without the :data:`OPTIONAL_SECTIONS` its run does not have (``null``
    in the composed config: the schema declares them, the run's groups left them empty)."""
    return {k: v for k, v in cfg.items() if not (k in OPTIONAL_SECTIONS and v is None)}


def store_schemas() -> None:
    """Register the apps' schemas in Hydra's ``ConfigStore`` (``train_schema``,
    ``sample_schema``), the first entry of ``train.yaml``'s and ``sample.yaml``'s defaults."""
    from hydra.core.config_store import ConfigStore  # deferred: Hydra is imported only by the apps

    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainApp)
    store.store(name="sample_schema", node=SampleApp)


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
