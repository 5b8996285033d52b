"""The ``device`` and ``precision`` keys: errors that name them, checkpoints onto the device,
samplers chosen for the device, and mixed-precision training on the CPU (real speech)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from melforge.core.app import check_sample_config, check_train_config
from melforge.core.checkpoint import load_checkpoint
from melforge.core.config_schema import ConfigError
from melforge.core.device import DeviceError, resolve_device
from melforge.core.experiment import place_experiment
from melforge.core.experiment import build_model
from melforge.core.precision import Precision, PrecisionError
from melforge.core.samples import sample_checkpoint
from melforge.core.learners import train

TINY = ("backbone.hidden_size=16", "backbone.layers=1", "head.components=3", "data.crop_frames=12",
        "data.valid_crops=4", "train.batch_size=2", "train.max_steps=2", "train.log_every=1",
        "train.valid_every=2", "train.checkpoint_every=2", "sample.count=0", "threads=1")


def _fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_resolve_device_names_the_key_and_never_falls_back(monkeypatch):
    _fake_gpus(monkeypatch, 0)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match=r"device=cuda: CUDA is not available on this machine"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match=r"device='gpu': expected one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device("gpu")
    with pytest.raises(DeviceError, match=r"device='cpu:1'"):
        resolve_device("cpu:1")
    _fake_gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)  # a DDP rank's own GPU
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"device=cuda:2: GPU 2 does not exist \(this machine has 2"):
        resolve_device("cuda:2")


def test_configs_check_device_precision_and_the_samplers_device(compose_train, monkeypatch):
    _fake_gpus(monkeypatch, 0)
    with pytest.raises(DeviceError, match="device=cuda"):
        check_train_config(compose_train("device=cuda"))
    with pytest.raises(ConfigError, match=r"precision='fp8': expected one of fp32, bf16, fp16"):
        check_train_config(compose_train("precision=fp8"))
    with pytest.raises(ConfigError, match=r"device='tpu': expected one of"):
        check_train_config(compose_train("device=tpu"))
    check_train_config(compose_train("device=cpu", "precision=bf16", "sampler=melnet_compiled"))
    _fake_gpus(monkeypatch, 1)
    with pytest.raises(ConfigError, match=r"sampler=melnet_compiled runs on cpu only, not on device=cuda"):
        check_train_config(compose_train("device=cuda", "sampler=melnet_compiled"))
    check_train_config(compose_train("device=cuda", "sampler=cached"))
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        sample = OmegaConf.to_container(compose("sample", ["checkpoint=x.pt", "device=cuda:0", "sampler=wavenet_compiled"]))
    with pytest.raises(ConfigError, match=r"sampler=wavenet_compiled runs on cpu only, not on device=cuda:0"):
        check_sample_config(sample)


def test_a_missing_device_is_a_one_line_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "melforge.core.cli.train", "device=cuda:7", *TINY, "hydra.run.dir=run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("melforge-train: error: device=cuda:7: CUDA is not available")
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


def test_samplers_are_chosen_for_the_models_device(compose_train):
    cfg = compose_train(*TINY)
    exp = SimpleNamespace(cfg=cfg, model=build_model(cfg), samplers=[])
    place_experiment(exp, torch.device("cpu"))
    assert [type(s).__name__ for s in exp.samplers] == ["MelNetCompiledSampler"]
    place_experiment(exp, torch.device("meta"))  # any non-CPU device: the Numba sampler drops out
    assert [type(s).__name__ for s in exp.samplers] == ["CachedSampler"]
    assert next(exp.model.parameters()).device.type == "meta"
    exp = SimpleNamespace(cfg={**cfg, "sampler": {"name": "melnet_compiled"}}, model=build_model(cfg), samplers=[])
    with pytest.raises(ValueError, match=r"sampler 'melnet_compiled' .*cannot sample this model: the model is on meta"):
        place_experiment(exp, torch.device("meta"))


def test_the_nll_is_float32_under_autocast(compose_train):
    model = build_model(compose_train(*TINY)).tiers[0]
    x = torch.randn(2, 12, 80)
    with Precision("bf16", torch.device("cpu")).autocast():
        h = model.backbone(x)
        lp = model.log_prob(x)
    assert h.dtype == torch.bfloat16 and lp.dtype == torch.float32
    torch.testing.assert_close(lp, model.log_prob(x), rtol=0, atol=0.2)  # bf16 features, fp32 densities
    with pytest.raises(PrecisionError, match=r"precision='fp8'"):
        Precision("fp8", torch.device("cpu"))
    assert Precision("fp16", torch.device("cpu")).scaler is not None and Precision("bf16", torch.device("cpu")).scaler is None


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_the_cpu(tmp_path, compose_train, precision, monkeypatch):
    metrics = train(compose_train(*TINY, f"precision={precision}", "device=cpu"), tmp_path / precision)
    assert metrics["precision"] == precision and metrics["device"] == "cpu" and metrics["ranks"] == 1
    assert metrics["valid_nll"] < metrics["valid_nll_step0"]
    state = load_checkpoint(tmp_path / precision / "checkpoints/last.pt", map_location="meta")
    assert all(v.device.type == "meta" for v in state["model"].values())  # loaded onto the asked device
    assert bool(state["precision"]) == (precision == "fp16")  # the fp16 gradient scaler's state resumes
    _fake_gpus(monkeypatch, 0)
    with pytest.raises(DeviceError, match="device=cuda: CUDA is not available"):  # melforge-sample's device
        sample_checkpoint(tmp_path / precision / "checkpoints/last.pt", tmp_path / "s", {}, device="cuda")


def test_the_configs_sampler_options_reach_the_sampler_chosen_after_placement(compose_train):
    cfg = compose_train(*TINY, "sampler=melnet_compiled", "sampler.weights=bf16", "sampler.threads=1")
    exp = SimpleNamespace(cfg=cfg, model=build_model(cfg), samplers=[])
    place_experiment(exp, torch.device("cpu"))
    (sampler,) = exp.samplers
    assert type(sampler).__name__ == "MelNetCompiledSampler" and (sampler.weights, sampler.threads) == ("bf16", 1)
