"""Packaging: one import package ``melforge`` in the wheel, configs shipped and composable."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_melforge_and_composes_configs_when_installed(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("melforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"melforge", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top
    for expected in (
        "melforge/__init__.py",
        "melforge/core/registry.py",
        "melforge/plugins/melnet/backbone.py",
        "melforge/inverters/griffin_lim.py",
        "melforge/datasets/asterisk.py",
        "melforge/configs/train.yaml",
        "melforge/configs/experiment/speech_tiny.yaml",
        "melforge/configs/representation/log_mel.yaml",
    ):
        assert expected in names, expected
    assert not any(n.startswith("melforge/tests/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script in ("melforge-train", "melforge-sample", "melforge-plugins"):
        assert script in entry_points

    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = f"""
import importlib.util, melforge
assert melforge.__file__.startswith({str(target)!r}), melforge.__file__
for bare in ("core", "datasets", "plugins", "inverters", "configs"):
    assert importlib.util.find_spec(bare) is None, bare
from hydra import compose, initialize_config_module
with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
    cfg = compose(config_name="train", overrides=["backbone.layers=3"])
assert cfg.backbone.name == "melnet" and cfg.backbone.layers == 3 and cfg.representation.name == "log_mel"
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
