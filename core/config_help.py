"""``--help`` for the Hydra apps: every key of the composed default config with its value and
one-line meaning, taken from the comment beside it in its config file or, for the runner's own
keys, from the typed schema (:mod:`melforge.core.config_schema`)."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

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


def config_help(prog: str, cfg: dict[str, Any], config_dir: Path, config_name: str, schema: type | None) -> str:
    """The help text of ``prog`` for its composed default config ``cfg``."""
    from .run_dir import flatten

    meanings = schema_docs(schema) if schema is not None else {}
    meanings.update(yaml_comments(config_dir / f"{config_name}.yaml"))
    for key, value in cfg.items():  # each part's group file: configs/<group>/<name>.yaml
        if isinstance(value, dict) and "name" in value:
            path = config_dir / key / f"{value['name']}.yaml"
            if path.is_file():
                meanings.update(yaml_comments(path, key))
    groups = sorted(p.name for p in config_dir.iterdir() if p.is_dir() and not p.name.startswith("_"))
    lines = [
        f"{prog}: a Hydra app; override any key as key=value, pick a part as group=name, sweep with -m.",
        f"Config groups: {', '.join(groups)} (`melforge-plugins` lists every registered part).",
        "",
        "Keys of the default config (value, meaning):",
    ]
    flat = flatten(cfg)
    width = max((len(k) for k in flat), default=0)
    for key, value in flat.items():
        meaning = meanings.get(key, "")
        lines.append(f"  {key:<{width}}  = {value!r}" + (f"   # {meaning}" if meaning else ""))
    lines += ["", "Hydra's own flags: --cfg job (print the composed config), --info, --multirun/-m."]
    return "\n".join(lines)
