"""Shared fixtures: real audio from melforge's own datasets (prepared on first use)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melforge.core.config_schema import drop_absent


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def speech_clips():
    """Real single-speaker speech: list of AudioClip at 16 kHz (Asterisk English prompts)."""
    from melforge.datasets.asterisk import AsteriskPrompts

    return list(AsteriskPrompts(languages=("en",)).clips(16000))


@pytest.fixture(scope="session")
def speech_audio(speech_clips) -> tuple[np.ndarray, int]:
    """One real speech recording of at least 2 s: ``(audio (samples,) float32, sr=16000)``."""
    clip = next(c for c in speech_clips if len(c.audio) >= 2 * c.sr)
    return clip.audio, clip.sr


@pytest.fixture
def compose_train():
    """Compose the ``train`` config like ``melforge-train`` would, with overrides; returns a
    plain dict (resolved)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    def _compose(*overrides: str) -> dict:
        with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides))
        return drop_absent(OmegaConf.to_container(cfg, resolve=True))

    return _compose


@pytest.fixture
def tiny_train() -> tuple[str, ...]:
    """Overrides for a training config small enough for tests (seconds), on real speech."""
    return TINY_TRAIN


TINY_TRAIN = (
    "backbone.hidden_size=16",
    "backbone.layers=1",
    "head.components=3",
    "data.crop_frames=12",
    "data.valid_crops=4",
    "train.batch_size=2",
    "train.log_every=1",
    "train.valid_every=2",
    "train.checkpoint_every=2",
    "sample.count=0",
    "threads=1",
)
