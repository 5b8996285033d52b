"""The ``wavenet_compiled`` sampler: WaveNet with a head that declares compiled maths (the
categorical head) in Numba, the same draws as the ``cached`` and ``reference`` samplers,
without Python per sample, all streams of a batch in one call.

Per block of up to :data:`CHUNK` samples:

1. the block's noise is drawn from the torch generator in one call,
   ``head.draw_noise((n, batch, 1))`` → ``(n, batch, 1, noise_width)``: the same numbers, in
   the same order, as ``n`` per-frame calls ``head.draw_noise((batch, 1))`` of the other
   samplers (PyTorch's CPU generator fills a tensor in order);
2. one call of :func:`melforge.plugins.wavenet.compiled_kernels.generate` runs every sample of
   the block for every stream: the residual stack with its queues (Fast WaveNet, Paine et al.
   2016) with each layer's weights read once per step for the whole batch, the output network,
   the head's projection (``head.projection()``) and the head's own maths
   (``head.compiled_maths(dtype)``: draw, untempered log-probability), feeding each drawn value back
   as the next sample's input.

Set-up once per model: the extracted (transposed, optionally 16-bit) weights are kept in a
:class:`~melforge.core.sampler.WeightCache` until a parameter changes.

Options: ``weights`` — ``"fp32"`` (the model's dtype, default), ``"fp16"`` or ``"bf16"``
(matrices stored at 16 bits, accumulated in float32: half the bytes read per step; biases and
the head's maths unchanged); ``threads`` — ``1``, ``2``, … or ``"auto"`` (split the products'
output columns over Numba's threads where a same-process measurement at the model's shape and
batch says it pays; :func:`choose_chunks`).

Primed samples are fed through the stack first (no head, no noise). Same seed, same model →
the same waveform as the eager samplers (in float64 and fp32 weights; a draw could differ only
where two Gumbel scores tie to the last bit).
"""

from __future__ import annotations

import numpy as np
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult, Sampler, WeightCache
from melforge.plugins.batched_matmul import FORMATS, choose_chunks, scratch_for, store

from .compiled_kernels import generate

#: Samples per kernel call: bounds the noise block to ``CHUNK · batch · noise_width`` numbers.
CHUNK = 4096


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def extract_weights(backbone, head, fmt: str = "fp32") -> tuple[np.ndarray, ...]:
    """The weights :func:`~melforge.plugins.wavenet.compiled_kernels.generate` reads, as
    contiguous numpy arrays of the model's dtype, the matrices in format ``fmt``
    (:func:`melforge.plugins.batched_matmul.store`: ``uint16`` bit patterns for fp16/bf16).

    Returns:
        ``(w_in (R,), b_in (R,), wt_conv (L, K·R, 2R), b_conv (L, 2R), wt_cond (L, C, 2R),
        wt_sr (L, R, S + R), b_res (L, R), b_skip (S,), wt_out (S, S), b_out (S,),
        wt_head (S, classes), b_head (classes,))``: the input 1×1 convolution, each block's
        dilated convolution ``[W_f; W_g]`` tap-major and transposed, its bias, its conditioning
        map ``[V_f; V_g]^T`` (``C = 0`` without), ``[W_s | W_r]^T`` and the residual bias (zeros
        for the last block, which has no residual projection), the summed skip biases, the
        output 1×1 ``W_o^T``, and the head's ``W_θ^T`` (from ``head.projection()``).
    """
    blocks = list(backbone.blocks)
    r, c = backbone.residual_channels, backbone.cond_features
    param = backbone.input.weight
    w_in = _np(backbone.input.weight[:, 0, 0])
    b_in = _np(backbone.input.bias)
    # conv.weight (2R, R, K) -> (K, R, 2R) -> (K·R, 2R): row k·R + i is tap k, input channel i.
    wt_conv = _np(torch.stack([b.conv.weight.permute(2, 1, 0).reshape(-1, 2 * r) for b in blocks]))
    b_conv = _np(torch.stack([b.conv.bias for b in blocks]))
    if c:
        wt_cond = _np(torch.stack([b.cond_proj.weight.T for b in blocks]))  # (L, C, 2R)
    else:
        wt_cond = _np(torch.zeros(len(blocks), 0, 2 * r, dtype=param.dtype))
    zeros = torch.zeros(r, r, dtype=param.dtype)
    wt_sr = _np(torch.stack([  # (L, R, S + R): [W_s | W_r]^T, W_r zero for the last block
        torch.cat([b.skip.weight[:, :, 0], b.res.weight[:, :, 0] if b.res is not None else zeros]).T for b in blocks
    ]))
    b_res = _np(torch.stack([b.res.bias if b.res is not None else zeros[0] for b in blocks]))
    b_skip = _np(torch.stack([b.skip.bias for b in blocks]).sum(dim=0))
    wt_out = _np(backbone.output.weight[:, :, 0].T)
    b_out = _np(backbone.output.bias)
    w_head, b_head = head.projection()
    wt_head, b_head = _np(w_head.T), _np(b_head)  # (S, classes)
    return (w_in, b_in, store(wt_conv, fmt), b_conv, store(wt_cond, fmt), store(wt_sr, fmt), b_res, b_skip,
            store(wt_out, fmt), b_out, store(wt_head, fmt), b_head)


class WaveNetCompiledSampler(Sampler):
    """WaveNet + a head with compiled maths, on the CPU, float32 or float64: one Numba call per
    block of samples runs the queues, the residual stack, the output network, the head and the
    draws of all streams. The first call per dtype compiles the kernels (seconds; the heavy
    ones are cached on disk afterwards).

    Args:
        weights: ``"fp32"`` (default: the model's own dtype), ``"fp16"`` or ``"bf16"``.
        threads: ``"auto"`` (default), or the number of column blocks per product.

    Attributes:
        cache: the extracted weights per model (:class:`~melforge.core.sampler.WeightCache`).

    Raises:
        ValueError: an unknown ``weights`` format.
    """

    speed = 20
    backbones = ("wavenet",)
    heads = ("categorical",)
    devices = ("cpu",)
    dtypes = (torch.float32, torch.float64)

    def __init__(self, weights: str = "fp32", threads: int | str = "auto"):
        if weights not in FORMATS:
            raise ValueError(f"weights: must be one of {', '.join(FORMATS)}, got {weights!r}")
        self.weights, self.threads = weights, threads
        self.cache = WeightCache()

    def sample(self, model: SpectrogramModel, request: SampleRequest) -> SampleResult:
        """See :meth:`melforge.core.sampler.Sampler.sample`.

        Raises:
            SamplerError: a model this sampler does not support.
            ValueError: see :func:`sample_compiled`.
        """
        self.check(model)
        backbone, head = model.backbone, model.head
        weights = self.cache.get((backbone, head), lambda: extract_weights(backbone, head, self.weights), self.weights)
        return sample_compiled(backbone, head, request, weights, self.weights, self.threads)


def _state(backbone, batch: int, dtype) -> tuple:
    """Queues ``(B, Σ q_l, R)``, ``offsets`` and ``dilations`` (int64) and the step buffers
    ``(taps, a, z, u, c_t)`` and ``(relu, y)`` of :mod:`compiled_kernels`, zeros."""
    r, s, c = backbone.residual_channels, backbone.skip_channels, backbone.cond_features
    dilations = np.asarray(backbone.dilations, dtype=np.int64)
    lengths = (backbone.kernel_size - 1) * dilations
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    queues = np.zeros((batch, max(int(lengths.sum()), 1), r), dtype)
    bufs = tuple(np.zeros((batch, n), dtype) for n in (backbone.kernel_size * r, 2 * r, r, s + r, c))
    return queues, offsets, dilations, bufs, (np.zeros((batch, s), dtype), np.zeros((batch, s), dtype))


@torch.no_grad()
def sample_compiled(
    backbone, head, request: SampleRequest, weights=None, fmt: str = "fp32", threads: int | str = 1,
) -> SampleResult:
    """Draw ``request`` (``bins = 1``: ``frames`` are samples) from a WaveNet ``backbone`` with
    ``head`` (both on the CPU, of one dtype, float32 or float64).

    Args:
        weights: :func:`extract_weights` of the pair in format ``fmt`` (``None``: extracted now).
        fmt: the format of ``weights``.
        threads: see :class:`WaveNetCompiledSampler`.

    Returns:
        :class:`~melforge.core.sampler.SampleResult`: ``x (batch, samples, 1)`` companded values
        on the head's grid, ``log_prob (batch,)`` in nats over the sampled (not primed)
        samples, untempered.

    Raises:
        ValueError: see :meth:`SampleRequest.validate`; ``bins != 1``, a ``context``, bad
            conditioning (:meth:`WaveNet.conditioning`), or a head of another dtype.
    """
    dtype = backbone.input.weight.dtype
    w_head, _ = head.projection()
    if w_head.dtype != dtype:
        raise ValueError(f"wavenet: head dtype {w_head.dtype} != model dtype {dtype}")
    primed = request.validate()
    if request.bins != 1:
        raise ValueError(f"wavenet: samples one value per frame (bins=1), got bins={request.bins}")
    if request.context is not None:
        raise ValueError("wavenet: takes no context x_<g (it has no multiscale tiers)")
    if weights is None:
        weights = extract_weights(backbone, head, fmt)
    batch, samples = request.batch, request.frames
    x = torch.zeros(batch, samples, 1, dtype=dtype)
    if primed:
        x[:, :primed] = request.prime.to(dtype)
    x_np = x.numpy()  # shares memory with x; the kernel writes the drawn samples into it
    log_prob = torch.zeros(batch, dtype=dtype)
    log_prob_np = log_prob.numpy()
    z = backbone.conditioning(request.cond, samples)  # (B, T or 1, C) or None
    cond = np.zeros((batch, 1, 0), x_np.dtype) if z is None else _np(z.to(dtype))
    queues, offsets, dilations, bufs, (relu, y) = _state(backbone, batch, x_np.dtype)
    maths = head.compiled_maths(dtype)
    logits = np.zeros((batch, w_head.shape[0]), x_np.dtype)
    head_scratch = np.zeros(maths.scratch)
    chunks = choose_chunks(weights[2][0], batch, x_np.dtype, fmt, threads)  # at the largest product
    scratch = scratch_for(max(w.shape[-1] for w in weights), chunks)
    half = FORMATS[fmt]
    temperature = float(request.temperature)
    state = (cond, queues, offsets, dilations, log_prob_np, bufs, (relu, y, logits), weights, half, scratch)
    tail = (temperature, maths.draw, maths.log_prob, head_scratch)
    if primed:
        no_noise = np.zeros((1, batch, 1, head.noise_width), x_np.dtype)
        generate(x_np, 0, primed, False, no_noise, *state, *tail)
    for t0 in range(primed, samples, CHUNK):
        t1 = min(samples, t0 + CHUNK)
        noise = head.draw_noise((t1 - t0, batch, 1), request.generator, dtype)  # (n, B, 1, noise_width)
        generate(x_np, t0, t1, True, noise.numpy(), *state, *tail)
        if request.progress is not None:
            request.progress(t1 - t0)
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=samples - primed)
