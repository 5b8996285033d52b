"""How melforge's Hydra apps start and fail: plugin config search paths, a check of the
command line and of every config value before any work, and one-line errors.

Every error a user can cause (a bad override, an unknown key, a value out of range, a missing
file, a busy run directory, a diverged run, …) ends the app with exit status 2 and one line on
stderr, ``<prog>: error: <what, naming the key or file>``. ``MELFORGE_DEBUG=1`` (or Hydra's
``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from .config_help import config_help
from .config_options import config_dirs
from .config_schema import ConfigError, SampleApp, TrainApp, drop_absent, validate
from .config_search import searchpath_override_for
from .override_errors import explain

#: Exit status of every error a user can cause.
USAGE_ERROR = 2


def debugging() -> bool:
    """Whether tracebacks are wanted (``MELFORGE_DEBUG=1`` or ``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get("MELFORGE_DEBUG", "") not in ("", "0") or os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (Hydra's and OmegaConf's span several). A value the
    typed schema refuses (an OmegaConf ``ValidationError`` under Hydra's composition error) is
    named by its key and value."""
    cause = exc.__cause__
    full_key, value, msg = (getattr(cause, k, None) for k in ("full_key", "value", "msg"))
    if full_key and msg is not None:
        return f"{full_key}={value!r}: {str(msg).splitlines()[0]}"
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [l for l in lines if l and not l.startswith(("object_type=", "Set the environment variable HYDRA_FULL_ERROR"))]
    text = "; ".join(lines) or type(exc).__name__
    return text


def fail(prog: str, exc: BaseException) -> None:
    """Print ``exc`` as one line and exit with :data:`USAGE_ERROR` (re-raise when debugging)."""
    if debugging():
        raise exc
    print(f"{prog}: error: {one_line(exc)} (MELFORGE_DEBUG=1 shows the traceback)", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def _overrides(argv: list[str]) -> list[str] | None:
    """The config overrides in ``argv``, or ``None`` when Hydra flags (``-m``, ``--help``, …)
    ask for something other than one plain run."""
    if any(a.startswith("-") for a in argv):
        return None
    return [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]


def run_hydra_app(
    prog: str,
    config_name: str,
    task: Callable[[dict, str], Any],
    check: Callable[[dict], None] | None = None,
    schema: type | None = None,
) -> None:
    """Run ``task(plain_config, output_dir)`` as a Hydra app on ``melforge.configs/<config_name>``.

    Plugin config folders join the search path (``melforge_config_searchpath``); for a plain
    run the command line is composed once first, so a bad override fails before Hydra starts,
    on one line. Inside the app the config is resolved, checked with ``check`` and handed to
    ``task``; any exception ends the app on one line (see the module docstring). ``--help``
    lists every key of the composed config with its meaning (from the config files' comments
    and ``schema``).
    """
    # OpenMP threads that wait for work sleep instead of spinning: on a machine another job is
    # using, spinning threads made training 2x slower (benchmarks/RESULTS.md, Threads). Set before
    # torch loads its OpenMP runtime; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import hydra  # deferred: importing hydra takes 216 ms; start-up does not pay for it
    from hydra.core.hydra_config import (
        HydraConfig,  # deferred: importing hydra.core.hydra_config takes 132 ms; start-up does not pay for it
    )

    from .plugins import (
        load_config_searchpath,  # deferred: importing melforge.core.plugins takes 105 ms; start-up does not pay for it
    )

    searchpath = searchpath_override_for(load_config_searchpath())  # no registry, no torch yet
    argv = sys.argv[1:]
    if "--help" in argv or "-h" in argv:
        print_help(prog, config_name, schema, searchpath, argv)
        return
    overrides = _overrides(argv)
    if overrides is not None:
        try:
            from hydra import (  # deferred: importing hydra takes 216 ms; start-up does not pay for it
                compose,
                initialize_config_module,
            )

            with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
                cfg = compose(config_name=config_name, overrides=searchpath + overrides)
        except Exception as exc:  # noqa: BLE001 - every composition error becomes one line
            fail(prog, _explained(exc, config_name, searchpath, overrides))
        try:
            plain = drop_absent(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
            if check is not None:
                check(plain)
        except Exception as exc:  # noqa: BLE001 - every value error becomes one line
            fail(prog, exc)
    elif "-m" in argv or "--multirun" in argv:
        _check_sweep_keys(prog, config_name, searchpath, argv)

    def _task(cfg) -> Any:
        logging.captureWarnings(True)  # warnings (a skipped plugin, a skipped file) reach the run's log too
        try:
            plain = drop_absent(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
            if check is not None:
                check(plain)
            return task(plain, HydraConfig.get().runtime.output_dir)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            fail(prog, exc)

    multirun = "-m" in argv or "--multirun" in argv
    name = sweep_name(argv, config_name, searchpath) if multirun else config_name
    OmegaConf.register_new_resolver("melforge.sweep_name", lambda: name, replace=True)
    sys.argv = [sys.argv[0], *searchpath, *argv, *_follower_overrides(argv), *(_job_name_overrides(argv) if multirun else [])]
    hydra.main(version_base="1.3", config_path="pkg://melforge.configs", config_name=config_name)(_task)()


def print_help(prog: str, config_name: str, schema: type | None, searchpath: list[str], argv: list[str]) -> None:
    """Print ``prog --help`` for the config composed with ``argv``'s overrides
    (:func:`melforge.core.config_help.config_help`); a bad override fails on one line."""
    import melforge.configs  # deferred: importing melforge.configs takes 147 ms; start-up does not pay for it

    from .plugins import (
        load_config_searchpath,  # deferred: importing melforge.core.plugins takes 105 ms; start-up does not pay for it
    )

    overrides = [a for a in argv if not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        cfg, choices = compose_plain(config_name, searchpath, overrides, with_choices=True)
    except Exception as exc:  # noqa: BLE001
        fail(prog, _explained(exc, config_name, searchpath, overrides))
    dirs = config_dirs(load_config_searchpath())
    print(config_help(prog, cfg, Path(melforge.configs.__file__).parent, config_name, schema,
                      choices=choices, dirs=dirs, overrides=overrides))


def _check_sweep_keys(prog: str, config_name: str, searchpath: list[str], argv: list[str]) -> None:
    """Before a ``-m`` sweep starts, compose its first job (every ``a,b,c`` sweep at its first
    value; ``range(…)``-style sweeps left out), so that a mistyped key or option fails on one line
    with "did you mean" (:func:`_explained`) rather than with Hydra's advice to append it."""
    first = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if arg.startswith("-") or not eq or key.lstrip("+~").startswith(("hydra.", "hydra/")):
            continue
        if value.startswith(("range(", "choice(", "glob(", "interval(")):
            continue
        first.append(f"{key}={_first_value(value)}" if _is_sweep(value) else arg)
    try:
        compose_plain(config_name, searchpath, first)
    except Exception as exc:  # noqa: BLE001 - one line, as for a plain run
        fail(prog, _explained(exc, config_name, searchpath, first))


def _top_level_comma(value: str) -> int | None:
    """The index of the first comma of ``value`` outside brackets and quotes (``None``: none)."""
    depth, quote = 0, ""
    for i, ch in enumerate(value):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            return i
    return None


def _first_value(value: str) -> str:
    """The first element of a ``a,b,c`` sweep value (commas inside brackets or quotes kept)."""
    i = _top_level_comma(value)
    return value if i is None else value[:i]


def compose_plain(config_name: str, searchpath: list[str], overrides: list[str], with_choices: bool = False):
    """The app's config composed for ``overrides``, as a plain dict (interpolations unresolved);
    with ``with_choices``, also ``{group: option}`` that composition chose (Hydra's own
    ``hydra/*`` groups left out).

    Raises:
        hydra.errors.HydraException: a bad override (see :func:`_explained`).
    """
    from hydra import (  # deferred: importing hydra takes 216 ms; start-up does not pay for it
        compose,
        initialize_config_module,
    )
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=searchpath + overrides, return_hydra_config=with_choices)
    if not with_choices:
        return OmegaConf.to_container(cfg, resolve=False)
    choices = {g: str(o) for g, o in cfg.hydra.runtime.choices.items() if not g.startswith("hydra") and o is not None}
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra", None)
    return plain, choices


def _explained(exc: BaseException, config_name: str, searchpath: list[str], overrides: list[str]) -> BaseException:
    """``exc`` as a one-line "did you mean" error when it is about an unknown key or option
    (:mod:`melforge.core.override_errors`), else ``exc`` itself."""
    try:
        better = explain(exc, overrides, searchpath, lambda ov: compose_plain(config_name, searchpath, ov))
    except Exception:  # noqa: BLE001 - the explanation must never hide the original error
        better = None
    if better is not None:
        better.__cause__ = exc
    return better or exc


def sweep_name(argv: list[str], config_name: str, searchpath: list[str]) -> str:
    """The name of a ``-m`` sweep's directory (``${melforge.sweep_name:}`` in the config): the
    experiment the command line names (``a+b`` when it sweeps several), else the config's
    default experiment; the config name when it has no ``experiment`` group."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "experiment" and value:
            return "+".join(v.strip() for v in value.split(","))
    try:
        from hydra import (  # deferred: importing hydra takes 216 ms; start-up does not pay for it
            compose,
            initialize_config_module,
        )

        plain = [a for a in argv if "=" in a and not a.startswith("-") and "," not in a
                 and not a.lstrip("+~").startswith("hydra")]
        with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=searchpath + plain, return_hydra_config=True)
        return str(cfg.hydra.runtime.choices.get("experiment") or config_name)
    except Exception:  # noqa: BLE001 - a bad override fails in Hydra itself, with its own message
        return config_name


def _is_sweep(value: str) -> bool:
    """Whether an override's value sweeps (``a,b``, ``range(…)``, ``choice(…)``, ``glob(…)``)
    rather than sets one value (a list ``[1,2]`` or a quoted string with commas is one value)."""
    return value.startswith(("range(", "choice(", "glob(", "interval(")) or _top_level_comma(value) is not None


def _job_name_overrides(argv: list[str]) -> list[str]:
    """Name each ``-m`` job's folder by the overrides that vary between the jobs only
    (``<num>_tiers=two``): every override that sets one value is left out of the name (it
    is in every job's ``config.yaml``, and the experiment is in the sweep's folder name)."""
    fixed = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and not arg.startswith("-") and not key.lstrip("+~").startswith("hydra") and not _is_sweep(value):
            fixed.append(key.lstrip("+~"))
    if not fixed:
        return []
    return [f"hydra.job.config.override_dirname.exclude_keys=[{','.join(dict.fromkeys(fixed))}]"]


def _follower_overrides(argv: list[str]) -> list[str]:
    """For a rank other than 0 of a data-parallel launch (``torchrun``, ``srun``): Hydra writes no
    ``.hydra/`` folder, no log file and no run directory of its own (rank 0's run directory is
    the run's, and the trainer receives it from rank 0; :mod:`melforge.core.distributed`)."""
    if not any(name in os.environ for name in ("WORLD_SIZE", "RANK", "SLURM_NTASKS")):
        return []  # no launcher: one process (and no torch import, which core.distributed needs)
    from .distributed import (  # deferred: melforge.core.distributed loads torch; start-up does not pay for it
        LaunchError,
        launch_env,
    )

    try:
        follower = launch_env().rank != 0
    except LaunchError:  # reported by the trainer, with the variable named
        follower = False
    if not follower or "-m" in argv or "--multirun" in argv:
        return []
    return ["hydra.output_subdir=null", "~hydra.job_logging.handlers.file", "hydra.job_logging.root.handlers=[console]",
            "hydra.run.dir=."]


def check_train_config(cfg: dict) -> None:
    """Every value of a ``melforge-train`` config: its own sections against
    :class:`melforge.core.config_schema.TrainApp`, each part's group against its registered
    factory, the optimiser's keys.

    Raises:
        ConfigError, EntryConfigError, UnknownEntryError, ValueError: names the key.
    """
    from .optim import (
        check_optimizer_config,  # deferred: melforge.core.optim loads torch; start-up does not pay for it
    )
    from .plugins import (
        registries,  # deferred: importing melforge.core.plugins takes 105 ms; start-up does not pay for it
    )

    validate(cfg, TrainApp)
    regs = registries()
    for kind in ("representation", "dataset", "backbone", "head", "inverter"):
        if cfg.get(kind) is not None:  # an inverter run has no backbone or head
            regs.of(kind).check_config(cfg[kind], where=kind)
    sampler = cfg.get("sampler") or {}
    if sampler.get("name") not in (None, "auto"):
        regs.sampler.check_config(sampler, where="sampler")
    check_device(cfg, regs)
    optimizer = cfg["optimizer"]
    if "name" in optimizer:
        check_optimizer_config(optimizer)
    else:  # a learner with several optimisers: one section each (optimizer.generator, optimizer.discriminator)
        for name, section in optimizer.items():
            check_optimizer_config(section, key=f"optimizer.{name}")


def check_device(cfg: dict, regs: Any) -> None:
    """``device`` is on this machine, and a sampler named in ``sampler.name`` runs there.

    Raises:
        DeviceError: names ``device`` and the value (never a fallback to another device).
        ConfigError: the named sampler does not run on that device (names ``sampler``).
    """
    from .device import (
        resolve_device,  # deferred: melforge.core.device loads torch; start-up does not pay for it
    )

    device = resolve_device(str(cfg.get("device") or "auto"))
    name = (cfg.get("sampler") or {}).get("name")
    if name in (None, "auto"):
        return
    devices = regs.sampler.get(str(name)).factory.devices
    if devices is not None and device.type not in devices:
        raise ConfigError(
            f"sampler={name} runs on {', '.join(devices)} only, not on device={cfg.get('device')} ({device}); "
            "choose sampler=auto or another sampler"
        )


def check_sample_config(cfg: dict) -> None:
    """Every value of a ``melforge-sample`` config (see :func:`check_train_config`)."""
    from .plugins import (
        registries,  # deferred: importing melforge.core.plugins takes 105 ms; start-up does not pay for it
    )

    validate(cfg, SampleApp)
    regs = registries()
    regs.inverter.check_config(cfg["inverter"], where="inverter")
    sampler = cfg.get("sampler") or {}
    if sampler.get("name") not in (None, "auto"):
        regs.sampler.check_config(sampler, where="sampler")
    check_device(cfg, regs)
    check_checkpoint_path(cfg.get("checkpoint"))  # last: the config's own errors are named first


def check_checkpoint_path(path: str | None) -> None:
    """``checkpoint`` names a file that can be a PyTorch checkpoint (a zip archive), checked
    before Hydra makes a run folder or anything is printed.

    Raises:
        ValueError: null, missing, a folder, or not a zip archive (names ``checkpoint`` and the path).
    """
    if path is None:
        raise ValueError("checkpoint: give checkpoint=PATH (a .pt file written by melforge-train)")
    if not Path(path).is_file():
        what = "is a folder" if Path(path).is_dir() else "does not exist"
        raise ValueError(f"checkpoint={path} {what} (give a .pt file written by melforge-train)")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"checkpoint={path}: not a PyTorch checkpoint file (a melforge checkpoint is a zip archive "
                         "written by torch.save)")
