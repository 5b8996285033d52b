"""Shared fixtures: real audio from melforge's own datasets (prepared on first use)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


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
