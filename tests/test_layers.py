"""The layers of ``melforge.core`` and the one direction of imports between them.

Every module of ``core/`` belongs to one layer; a module imports only from its own layer or the
layers below (every import counts, including those inside functions and under
``TYPE_CHECKING``), and no import circle exists anywhere in the package. The README's
*Architecture* section draws the same layers.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Bottom to top. A module's layer is that of the longest prefix listed (``dsp`` covers ``dsp.heap``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("support", ("atomic", "paths", "progress", "plotting", "declared", "config_options")),
    ("contracts", ("config_schema", "validation", "stft", "masking", "normalization", "tiers", "speakers",
                   "representation", "dataset", "backbone", "head", "sampler", "model", "multiscale", "inverter",
                   "mel_inversion", "learner", "mel_vocoder")),
    ("signal", ("dsp", "metrics", "vector_maths", "audio_pair", "crepe", "pitch_decoding", "loudness", "periodicity",
                "speech_quality", "spectral_distance")),
    ("registries", ("registry", "hookspecs", "plugins", "plugin_listing", "listing_cache", "config_search")),
    ("build", ("audio_io", "listening_set", "features", "crops", "clips", "experiment", "inversion")),
    ("run", ("device", "precision", "distributed", "divergence", "checkpoint", "run_dir", "optim", "reporting",
             "training")),
    ("learners", ("samples", "model_learner", "learners")),
    ("apps", ("app", "cli", "config_help", "override_errors", "report", "conformance")),
]


def _modules() -> dict[str, pathlib.Path]:
    """``{"melforge.core.x": path}`` for every module of the package (``tests``, ``benchmarks``
    and ``examples`` aside)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", "benchmarks", "examples", "build"} or any(p.startswith(".") for p in rel.parts):
            continue
        parts = ["melforge", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    """Each module's imports of other modules of the package."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                prefix = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
                names = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
            for name in names:
                target = resolve(name) if name.startswith("melforge") else None
                if target and target != mod and not mod.startswith(target + "."):
                    found.add(target)
        graph[mod] = found
    return graph


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of a ``melforge.core`` module (``None``: not assigned)."""
    name = module.removeprefix("melforge.core.")
    best = None
    for k, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (k, len(prefix))
    return None if best is None else best[0]


def test_every_core_module_has_a_layer_and_imports_only_downwards():
    modules = _modules()
    graph = _imports(modules)
    core = [m for m in modules if m.startswith("melforge.core.")]
    assert not [m for m in core if layer_of(m) is None], "modules without a layer"
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m in core for t in graph[m] if t.startswith("melforge.core.") and layer_of(t) > layer_of(m)
    ]
    assert not upward, "\n".join(upward)
    outside = [f"{m} imports {t}" for m in core for t in graph[m]
               if not t.startswith("melforge.core") and t != "melforge.configs"]  # the configs' own folder
    assert not outside, "core imports a plugin, an inverter or a dataset:\n" + "\n".join(outside)


def test_no_import_circle_anywhere_in_the_package():
    graph = _imports(_modules())
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return path[path.index(t):] + [t] if t in path else [m, t]
            if t not in state:
                found = visit(t, path + [t])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            circle = visit(m, [m])
            assert circle is None, " → ".join(circle)
