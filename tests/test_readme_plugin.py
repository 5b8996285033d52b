"""The README's plugin section, executed (issue 20, item 1): its files are written into a
folder, installed with pip, listed by ``melforge-plugins``, trained for 3 steps with
``head=logistic``, and its own conformance test (the kit) is run on it."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A README code block that is a file of the example package: its first line names it.
FILE_BLOCK = re.compile(r"```(?:python|toml|yaml)\n# (my-logistic/\S+)\n(.*?)```", re.S)


def readme_plugin_files() -> dict[str, str]:
    """``{relative path: text}`` of every file block in the README's *Adding a plugin* section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding a plugin", 1)[1].split("\n## ", 1)[0]
    return {path: f"# {path}\n{body}" for path, body in FILE_BLOCK.findall(section)}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> tuple[Path, Path]:
    """The README's package written into a folder and pip-installed into a folder of its own:
    ``(source folder my-logistic/, install target for PYTHONPATH)``."""
    root = tmp_path_factory.mktemp("readme_plugin")
    for rel, text in readme_plugin_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-input", "-q",
         "--target", str(target), "./my-logistic"],
        capture_output=True, text=True, timeout=300, cwd=root, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root / "my-logistic", target


def _run(target: Path, *args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(target), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_section_holds_a_whole_package():
    assert sorted(readme_plugin_files()) == [
        "my-logistic/my_logistic/__init__.py", "my-logistic/my_logistic/configs/__init__.py",
        "my-logistic/my_logistic/configs/head/logistic.yaml", "my-logistic/my_logistic/melforge_plugin.py",
        "my-logistic/pyproject.toml", "my-logistic/tests/test_conformance.py",
    ]


def test_melforge_plugins_lists_the_head_with_its_override(plugin, tmp_path):
    _, target = plugin
    proc = _run(target, "-m", "melforge.core.cli.plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    row = next(i for i, l in enumerate(lines) if l.split()[:1] == ["logistic"])
    assert lines[row].split() == ["logistic", "my-logistic:logistic"]
    assert "select: head=logistic" in "\n".join(lines[row:row + 4])


def test_it_trains_3_steps_with_head_logistic(plugin, tmp_path, tiny_train):
    _, target = plugin
    run = tmp_path / "run"
    overrides = [o for o in tiny_train if not o.startswith("head.")]
    proc = _run(target, "-m", "melforge.core.cli.train", "head=logistic", *overrides, "train.max_steps=3",
                "sample.count=1", "sample.frames=4", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 3 and all(math.isfinite(metrics[k]) for k in ("valid_nll_step0", "valid_nll", "train_nll"))
    assert "name: logistic" in (run / "config.yaml").read_text()
    assert (run / "samples" / "sample_000.wav").is_file()


def test_its_conformance_test_passes(plugin):
    source, target = plugin
    proc = _run(target, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", cwd=source)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


def test_a_head_without_in_features_is_named_by_the_base_class():
    import torch

    from melforge.core.declared import MissingAttributeError
    from melforge.core.head import Head
    from melforge.core.registry import Registry

    class LaplaceHead(Head):  # written from the old sketch: in_features, num_params, noise_width never set
        family = "laplace"

        def __init__(self, in_features: int):
            super().__init__()
            self.proj = torch.nn.Linear(in_features, 2)

        def forward(self, h):
            return self.proj(h)

        def log_prob(self, params, x):
            return x

        def draw_noise(self, shape, generator=None, dtype=torch.float32, device=None):
            return torch.rand((*shape, 1), generator=generator, dtype=dtype)

        def sample_from_noise(self, params, temperature, noise):
            return noise[..., 0]

    head = LaplaceHead(8)
    with pytest.raises(AttributeError, match=r"LaplaceHead has no attribute 'in_features', which every Head sets: "
                                             r"the width of the backbone features"):
        head.in_features
    assert head.proj.in_features == 8  # submodules are found as before
    registry = Registry("head", Head, check=Head.check_declared)
    registry.register("laplace", LaplaceHead, plugin="my-laplace")
    with pytest.raises(AttributeError, match=r"head 'laplace' from my-laplace: LaplaceHead does not set "
                                             r"in_features, num_params, noise_width, which every Head sets") as err:
        registry.create("laplace", in_features=8)
    assert isinstance(err.value, MissingAttributeError)
