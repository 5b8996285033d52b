"""``--help`` for the Hydra apps: every key of the composed default config with its value and
one-line meaning, taken from the comment beside it in its config file or, for the runner's own
keys, from the typed schema (:mod:`melforge.core.config_schema`)."""

from __future__ import annotations

import dataclasses
import re
import textwrap
import typing
from pathlib import Path
from typing import Any

from .config_options import group_options
from .run_dir import flatten

_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*):(?P<rest>.*)$")


def yaml_comments(path: Path, prefix: str = "") -> dict[str, str]:
    """``{"a.b": "comment"}`` for every ``key: value  # comment`` line of a config file, keys
    joined by their indentation (``prefix`` prepended: the config group of the file)."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        m = _LINE.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([prefix] * bool(prefix) + [k for _, k in stack] + [m["key"]])
        stack.append((indent, m["key"]))
        rest = m["rest"]
        if "#" in rest:
            found[key] = rest.split("#", 1)[1].strip()
    return found


def schema_docs(schema: type, prefix: str = "") -> dict[str, str]:
    """``{"train.max_steps": "the step training ends at", …}`` from a schema's field docs."""
    docs: dict[str, str] = {}
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        name = f"{prefix}{f.name}"
        section = [t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)]
        if section:  # a section, or an optional one (Optional[SampleSection])
            docs.update(schema_docs(section[0], name + "."))
        elif f.metadata.get("doc"):
            docs[name] = f.metadata["doc"]
    return docs


#: Columns the help text wraps at.
WIDTH = 100


def config_help(prog: str, cfg: dict[str, Any], config_dir: Path, config_name: str, schema: type | None,
                choices: dict[str, str] | None = None, dirs: list[Path] | None = None,
                overrides: list[str] = ()) -> str:
    """The help text of ``prog`` for its config ``cfg``, composed with the user's ``overrides``.

    Args:
        cfg: the composed config (plain dict).
        config_dir: melforge's config folder (the comments beside each key are read from it).
        choices: ``{group: option}`` that composition chose (Hydra's ``runtime.choices``, its own
            ``hydra/*`` groups left out): the groups this app uses, listed with their options.
        dirs: every config folder on the search path (:func:`melforge.core.config_options.config_dirs`).
        overrides: the command line's overrides, named in the heading of the key list.

    Returns:
        Text wrapped at :data:`WIDTH` columns: how to override, the default experiment (if the
        app has one), every group the app uses with its options (the chosen one marked ``*``),
        then every key with its value and meaning.
    """
    choices = dict(choices or {})
    meanings = schema_docs(schema) if schema is not None else {}
    meanings.update(yaml_comments(config_dir / f"{config_name}.yaml"))
    for key, value in cfg.items():  # each part's group file: configs/<group>/<name>.yaml
        option = choices.get(key) or (value.get("name") if isinstance(value, dict) else None)
        path = config_dir / key / f"{option}.yaml"
        if isinstance(value, dict) and path.is_file():
            meanings.update(yaml_comments(path, key))
    lines = _wrap(f"{prog}: a Hydra app; override any key as key=value, pick a part as group=option, sweep with -m.")
    if "experiment" in choices:
        default = default_choice(config_dir / f"{config_name}.yaml", "experiment")
        lines += _wrap(f"Default experiment: {default} (experiment=NAME picks another; melforge-plugins lists "
                       "the experiments with their purpose and every registered part).")
    options = group_options(dirs or [config_dir])
    if choices:
        lines += ["", "Config groups (group=option; * marks the option chosen here):"]
        width = max(len(g) for g in choices)
        for group in sorted(choices):
            names = [f"{o}*" if o == choices[group] else o for o in sorted(options.get(group, {}))]
            lines += _wrap(", ".join(names) or str(choices[group]), f"  {group:<{width}}  ", " " * (width + 4))
    chosen = " ".join(o for o in overrides) or "the defaults"
    lines += ["", f"Keys of the config for {chosen} (value, meaning):"]
    flat = flatten(cfg)
    width = min(max((len(k) for k in flat), default=0), 40)
    for key, value in flat.items():
        meaning = meanings.get(key, "")
        head = f"  {key:<{width}}  = {value!r}"
        lines += _wrap(f"# {meaning}", head + "   ", " " * (width + 6)) if meaning else [head]
    lines += ["", "Hydra's own flags: --cfg job (print the composed config), --info, --multirun/-m."]
    return "\n".join(lines)


def default_choice(config_file: Path, group: str) -> str | None:
    """The option a config file's ``defaults:`` list picks for ``group`` (``- experiment: speech_tiny``)."""
    m = re.search(rf"^\s*-\s*(?:override\s+/)?{re.escape(group)}:\s*([\w.\-]+)", config_file.read_text(), re.M)
    return m.group(1) if m else None


def _wrap(text: str, first: str = "", rest: str = "  ") -> list[str]:
    """``text`` after ``first`` wrapped at :data:`WIDTH` columns, later lines indented by ``rest``
    (a head wider than the page keeps the text on its own line, never cut)."""
    if len(first) > WIDTH - 20:
        return [first.rstrip()] + textwrap.wrap(text, WIDTH, initial_indent=rest, subsequent_indent=rest,
                                                break_long_words=False, break_on_hyphens=False)
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]
