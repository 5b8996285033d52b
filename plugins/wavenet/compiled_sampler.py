"""The ``wavenet_compiled`` sampler: WaveNet with the categorical head in Numba, the same draws
as the ``cached`` and ``reference`` samplers, without Python per sample.

Per block of up to :data:`CHUNK` samples:

1. the block's noise is drawn from the torch generator in one call,
   ``head.draw_noise((n, batch, 1))`` → ``(n, batch, 1, classes)`` uniforms: the same numbers,
   in the same order, as ``n`` per-frame calls ``head.draw_noise((batch, 1))`` of the other
   samplers (PyTorch's CPU generator fills a tensor in order);
2. one call of :func:`melforge.plugins.wavenet.compiled_kernels.generate` runs every sample of
   the block: the residual stack with its queues (Fast WaveNet, Paine et al. 2016), the output
   network, the head's projection and the head's own maths
   (:mod:`melforge.plugins.categorical.maths`: Gumbel-max draw, untempered log-softmax),
   feeding each drawn value back as the next sample's input.

Primed samples are fed through the stack first (no head, no noise). Same seed, same model →
the same waveform as the eager samplers (in float64; a draw could differ only where two Gumbel
scores tie to the last bit).
"""

from __future__ import annotations

import numpy as np
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult, Sampler

from .compiled_kernels import generate

#: Samples per kernel call: bounds the noise block to ``CHUNK · batch · classes`` numbers.
CHUNK = 4096


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def extract_weights(backbone, head) -> tuple[np.ndarray, ...]:
    """The weights :func:`~melforge.plugins.wavenet.compiled_kernels.generate` reads, as
    contiguous numpy arrays of the model's dtype (copied once per sampling call).

    Returns:
        ``(w_in (R,), b_in (R,), wt_conv (L, K·R, 2R), b_conv (L, 2R), wt_cond (L, C, 2R),
        wt_sr (L, R, S + R), b_res (L, R), b_skip (S,), wt_out (S, S), b_out (S,),
        wt_head (S, classes), b_head (classes,))``: the input 1×1 convolution, each block's
        dilated convolution ``[W_f; W_g]`` tap-major and transposed, its bias, its conditioning
        map ``[V_f; V_g]^T`` (``C = 0`` without), ``[W_s | W_r]^T`` and the residual bias (zeros
        for the last block, which has no residual projection), the summed skip biases, the
        output 1×1 ``W_o^T``, and the head's ``W_θ^T``.
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
    wt_head = _np(head.proj.weight.T)  # (S, classes)
    b_head = _np(head.proj.bias)
    return w_in, b_in, wt_conv, b_conv, wt_cond, wt_sr, b_res, b_skip, wt_out, b_out, wt_head, b_head


class WaveNetCompiledSampler(Sampler):
    """WaveNet + categorical head on the CPU, float32 or float64: one Numba call per block of
    samples runs the queues, the residual stack, the output network, the head and the draws.
    The first call per dtype compiles the kernel (seconds; cached on disk afterwards)."""

    speed = 20
    backbones = ("wavenet",)
    heads = ("categorical",)
    devices = ("cpu",)
    dtypes = (torch.float32, torch.float64)

    def sample(self, model: SpectrogramModel, request: SampleRequest) -> SampleResult:
        """See :meth:`melforge.core.sampler.Sampler.sample`.

        Raises:
            SamplerError: a model this sampler does not support.
            ValueError: see :func:`sample_compiled`.
        """
        self.check(model)
        return sample_compiled(model.backbone, model.head, request)


@torch.no_grad()
def sample_compiled(backbone, head, request: SampleRequest) -> SampleResult:
    """Draw ``request`` (``bins = 1``: ``frames`` are samples) from a WaveNet ``backbone`` with
    categorical ``head`` (both on the CPU, of one dtype, float32 or float64).

    Returns:
        :class:`~melforge.core.sampler.SampleResult`: ``x (batch, samples, 1)`` companded values
        on the head's grid, ``log_prob (batch,)`` in nats over the sampled (not primed)
        samples, untempered.

    Raises:
        ValueError: see :meth:`SampleRequest.validate`; ``bins != 1``, a ``context``, bad
            conditioning (:meth:`WaveNet.conditioning`), or a head of another dtype.
    """
    dtype = backbone.input.weight.dtype
    if head.proj.weight.dtype != dtype:
        raise ValueError(f"wavenet: head dtype {head.proj.weight.dtype} != model dtype {dtype}")
    primed = request.validate()
    if request.bins != 1:
        raise ValueError(f"wavenet: samples one value per frame (bins=1), got bins={request.bins}")
    if request.context is not None:
        raise ValueError("wavenet: takes no context x_<g (it has no multiscale tiers)")
    batch, samples = request.batch, request.frames
    x = torch.zeros(batch, samples, 1, dtype=dtype)
    if primed:
        x[:, :primed] = request.prime.to(dtype)
    x_np = x.numpy()  # shares memory with x; the kernel writes the drawn samples into it
    log_prob = torch.zeros(batch, dtype=dtype)
    log_prob_np = log_prob.numpy()
    z = backbone.conditioning(request.cond, samples)  # (B, T or 1, C) or None
    cond = np.zeros((batch, 1, 0), x_np.dtype) if z is None else _np(z.to(dtype))
    dilations = np.asarray(backbone.dilations, dtype=np.int64)
    lengths = (backbone.kernel_size - 1) * dilations
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    queues = np.zeros((batch, max(int(lengths.sum()), 1), backbone.residual_channels), x_np.dtype)
    weights = extract_weights(backbone, head)
    temperature = float(request.temperature)
    no_noise = np.zeros((1, batch, 1, head.classes), x_np.dtype)
    if primed:
        generate(x_np, 0, primed, False, no_noise, cond, queues, offsets, dilations, log_prob_np, *weights, temperature)
    for t0 in range(primed, samples, CHUNK):
        t1 = min(samples, t0 + CHUNK)
        noise = head.draw_noise((t1 - t0, batch, 1), request.generator, dtype)  # (n, B, 1, classes)
        generate(x_np, t0, t1, True, noise.numpy(), cond, queues, offsets, dilations, log_prob_np, *weights, temperature)
        if request.progress is not None:
            request.progress(t1 - t0)
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=samples - primed)
