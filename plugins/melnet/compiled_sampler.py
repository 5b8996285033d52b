"""The ``melnet_compiled`` sampler: MelNet with a head that declares compiled maths (the GMM
head) in Numba, the same draws as the ``cached`` and ``reference`` samplers, without Python per
element, all streams of a batch in one call.

Per frame ``i`` (seed 000 §4, eq. 6–9):

1. the time-delayed stack advances one frame — one call of
   :func:`melforge.plugins.melnet.compiled_kernels.time_frame` (or, with the centralized stack
   or ``COMPILE_TIME_STACK = False``, ``MelNet.time_frame`` in PyTorch, batched over all bins) →
   per layer ``l`` the frame-side input ``(batch, bins, H)`` of frequency-delayed layer ``l``;
2. the frame's noise is drawn from the torch generator exactly as every sampler draws it —
   ``head.draw_noise((batch, bins))``: ``u (batch, bins, K)`` then ``eps (batch, bins)``;
3. one call of :func:`melforge.plugins.melnet.compiled_kernels.frequency_frame` runs the whole
   frame for every stream: each element's LSTM cell steps of all frequency-delayed layers (eq.
   7, 9) with each layer's weights read once for the batch, the head's projection
   (``head.projection()``), and the head's own maths (``head.compiled_maths(dtype)``: the draw from
   the given noise and the untempered log-density, eq. 2–5), feeding each value back as
   ``x_{i,j-1}``.

Set-up once per model: the extracted weights are kept in a
:class:`~melforge.core.sampler.WeightCache` until a parameter changes. Options ``weights``
(``fp32`` | ``fp16`` | ``bf16``) and ``threads`` as the WaveNet compiled sampler's.

Same seed, same model → the same spectrogram as the eager sampler (in float64 up to rounding
of the last bit; a flip of a component choice would need two Gumbel scores within ~1e-16).
"""

from __future__ import annotations

import numpy as np
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult, Sampler, WeightCache
from melforge.plugins.batched_matmul import FORMATS, choose_chunks, scratch_for, store

from .backbone import frame_of
from .compiled_kernels import frequency_frame, time_frame

#: Run the time-delayed stack of each frame in Numba too (``compiled_kernels.time_frame``)
#: instead of ``MelNet.time_frame`` in PyTorch; models with the centralized stack always use
#: the PyTorch path.
COMPILE_TIME_STACK = True


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def extract_weights(model, head, fmt: str = "fp32") -> tuple[np.ndarray, ...]:
    """The weights :func:`~melforge.plugins.melnet.compiled_kernels.frequency_frame` reads, as
    contiguous numpy arrays of the model's dtype, the matrices in format ``fmt``
    (:func:`melforge.plugins.batched_matmul.store`).

    Returns:
        ``(w_in (H,), b_in (H,), wt_lstm (L, 2H, 4H), b_lstm (L, 4H), h0 (L, H), c0 (L, H),
        wt_proj (L, H, H), b_proj (L, H), wt_head (H, 3K), b_head (3K,))`` — ``W^f_0``, each
        frequency-delayed layer's ``[W_ih | W_hh]^T``, ``b_ih + b_hh``, initial state and
        ``W^f_l^T``, and the head's ``W_θ^T`` (``head.projection()``).
    """
    layers = list(model.frequency_layers)
    w_in = _np(model.freq_input.weight[:, 0])
    b_in = _np(model.freq_input.bias)
    wt_lstm = _np(torch.stack([
        torch.cat([layer.rnn.lstm.weight_ih_l0, layer.rnn.lstm.weight_hh_l0], dim=1).T for layer in layers
    ]))  # (L, 2H, 4H)
    b_lstm = _np(torch.stack([layer.rnn.lstm.bias_ih_l0 + layer.rnn.lstm.bias_hh_l0 for layer in layers]))
    h0 = _np(torch.stack([layer.rnn.h0[0] for layer in layers]))  # (L, H)
    c0 = _np(torch.stack([layer.rnn.c0[0] for layer in layers]))
    wt_proj = _np(torch.stack([layer.proj.weight.T for layer in layers]))  # (L, H, H)
    b_proj = _np(torch.stack([layer.proj.bias for layer in layers]))
    w_head, b_head = head.projection()
    wt_head, b_head = _np(w_head.T), _np(b_head)  # (H, num_params)
    return (w_in, b_in, store(wt_lstm, fmt), b_lstm, h0, c0, store(wt_proj, fmt), b_proj,
            store(wt_head, fmt), b_head)


def extract_time_weights(model, fmt: str = "fp32") -> tuple[np.ndarray, ...]:
    """The weights :func:`~melforge.plugins.melnet.compiled_kernels.time_frame` reads, as
    contiguous numpy arrays of the model's dtype, the matrices in format ``fmt``.

    Returns:
        ``(wt_time (L, 2H, 4H), b_time (L, 4H), wt_freq (L, 2, 2H, 4H), b_freq (L, 2, 4H),
        h0_freq (L, 2, H), c0_freq (L, 2, H), wt_proj (L, 3H, H), b_proj (L, H))``.
    """
    layers = list(model.time_layers)

    def cell(lstm, suffix=""):
        w = torch.cat([getattr(lstm, "weight_ih_l0" + suffix), getattr(lstm, "weight_hh_l0" + suffix)], dim=1).T
        return w, getattr(lstm, "bias_ih_l0" + suffix) + getattr(lstm, "bias_hh_l0" + suffix)

    wt_time = _np(torch.stack([cell(layer.time_rnn.lstm)[0] for layer in layers]))
    b_time = _np(torch.stack([cell(layer.time_rnn.lstm)[1] for layer in layers]))
    wt_freq = _np(torch.stack([
        torch.stack([cell(layer.freq_rnn.lstm, sfx)[0] for sfx in ("", "_reverse")]) for layer in layers
    ]))
    b_freq = _np(torch.stack([
        torch.stack([cell(layer.freq_rnn.lstm, sfx)[1] for sfx in ("", "_reverse")]) for layer in layers
    ]))
    h0_freq = _np(torch.stack([layer.freq_rnn.h0 for layer in layers]))
    c0_freq = _np(torch.stack([layer.freq_rnn.c0 for layer in layers]))
    wt_proj = _np(torch.stack([layer.proj.weight.T for layer in layers]))
    b_proj = _np(torch.stack([layer.proj.bias for layer in layers]))
    return (store(wt_time, fmt), b_time, store(wt_freq, fmt), b_freq, h0_freq, c0_freq, store(wt_proj, fmt), b_proj)


class MelNetCompiledSampler(Sampler):
    """MelNet + a head with compiled maths, on the CPU, float32 or float64: one Numba call per
    frame runs the frequency-delayed stack, the head and the draws of all streams (and another
    the time-delayed stack, without the centralized stack). The first call per dtype compiles
    the kernels (a few seconds; the heavy ones are cached on disk afterwards).

    Args:
        weights: ``"fp32"`` (default: the model's own dtype), ``"fp16"`` or ``"bf16"``.
        threads: ``"auto"`` (default), or the number of column blocks per product.

    Attributes:
        cache: the extracted weights per model (:class:`~melforge.core.sampler.WeightCache`).

    Raises:
        ValueError: an unknown ``weights`` format.
    """

    speed = 20
    backbones = ("melnet",)
    heads = ("gmm",)
    devices = ("cpu",)
    dtypes = (torch.float32, torch.float64)

    def __init__(self, weights: str = "fp32", threads: int | str = "auto"):
        if weights not in FORMATS:
            raise ValueError(f"weights: must be one of {', '.join(FORMATS)}, got {weights!r}")
        self.weights, self.threads = weights, threads
        self.cache = WeightCache()

    def sample(self, model: SpectrogramModel, request: SampleRequest) -> SampleResult:
        """See :meth:`melforge.core.sampler.Sampler.sample`."""
        self.check(model)
        backbone, head, fmt = model.backbone, model.head, self.weights

        def extract():
            time_weights = None if backbone.centralized else extract_time_weights(backbone, fmt)
            return extract_weights(backbone, head, fmt), time_weights

        weights = self.cache.get((backbone, head), extract, fmt)
        return sample_compiled(backbone, head, request, weights, fmt, self.threads)


def _time_state(model, batch: int, bins: int, dtype) -> tuple:
    """Rows ``(L, B, F, H)``, the time-LSTM states ``(L, B, F, H)`` (the trainable initial
    state) and the scratch of :func:`~melforge.plugins.melnet.compiled_kernels.time_frame`."""
    hidden = model.hidden_size
    shape = (model.layers, batch, bins, hidden)
    rows = np.empty(shape, dtype=dtype)
    time_h = np.ascontiguousarray(np.broadcast_to(_np(torch.stack(
        [layer.time_rnn.h0[0] for layer in model.time_layers]))[:, None, None, :], shape)).astype(dtype)
    time_c = np.ascontiguousarray(np.broadcast_to(_np(torch.stack(
        [layer.time_rnn.c0[0] for layer in model.time_layers]))[:, None, None, :], shape)).astype(dtype)
    n = batch * bins
    bufs = tuple(np.zeros(s, dtype) for s in ((n, 2 * hidden), (n, 4 * hidden), (n, 3 * hidden), (n, hidden),
                                             (batch, hidden), (batch, hidden)))
    return rows, time_h, time_c, bufs


def _frequency_state(model, head, batch: int, dtype) -> tuple:
    """The LSTM states ``h, c (L, B, H)`` and the scratch of
    :func:`~melforge.plugins.melnet.compiled_kernels.frequency_frame`."""
    hidden = model.hidden_size
    h = np.zeros((model.layers, batch, hidden), dtype)
    bufs = tuple(np.zeros(s, dtype) for s in ((batch, 2 * hidden), (batch, 4 * hidden), (batch, hidden),
                                             (batch, hidden), (batch, head.num_params)))
    return h, h.copy(), bufs


@torch.no_grad()
def sample_compiled(model, head, request: SampleRequest, weights=None, fmt: str = "fp32", threads=1) -> SampleResult:
    """Draw ``request`` from a MelNet tier ``model`` with ``head`` (both on the CPU, of the
    same dtype, float32 or float64), frame by frame.

    Args:
        weights: ``(extract_weights(...), extract_time_weights(...) or None)`` in format
            ``fmt`` (``None``: extracted now).
        fmt: the format of ``weights``.
        threads: see :class:`MelNetCompiledSampler`.

    Returns:
        :class:`~melforge.core.sampler.SampleResult`: ``x (batch, frames, bins)``,
        ``log_prob (batch,)`` in nats over the sampled (not primed) elements, untempered.

    Raises:
        ValueError: see :meth:`SampleRequest.validate`; a head of another dtype.
    """
    dtype = next(model.parameters()).dtype
    w_head, _ = head.projection()
    if w_head.dtype != dtype:
        raise ValueError(f"melnet: head dtype {w_head.dtype} != model dtype {dtype}")
    primed = request.validate()
    batch, frames, bins, temperature = request.batch, request.frames, request.bins, request.temperature
    compiled_time = COMPILE_TIME_STACK and not model.centralized
    if weights is None:
        weights = extract_weights(model, head, fmt), extract_time_weights(model, fmt) if compiled_time else None
    freq_weights, time_weights = weights
    x = torch.zeros(batch, frames, bins, dtype=dtype)
    if primed:
        x[:, :primed] = request.prime.to(dtype)
    x_np = x.numpy()  # shares memory with x; the kernel writes the sampled frames into it
    log_prob = torch.zeros(batch, dtype=dtype)
    log_prob_np = log_prob.numpy()
    context = request.context
    z = model.conditioning(request.cond, None if context is None else context.to(dtype))
    no_zf = np.zeros((batch, 1, model.hidden_size), dtype=x_np.dtype)
    maths = head.compiled_maths(dtype)
    head_scratch = np.zeros(maths.scratch)
    half = FORMATS[fmt]
    freq_h, freq_c, freq_bufs = _frequency_state(model, head, batch, x_np.dtype)
    chunks = choose_chunks(freq_weights[2][0], batch, x_np.dtype, fmt, threads)
    freq_scratch = scratch_for(4 * model.hidden_size, chunks)
    states = model.start_frames()
    prev_frame = torch.zeros(batch, bins, dtype=dtype)  # x_{i-1}, zeros before frame 0
    if compiled_time:
        rows_np, time_h, time_c, time_bufs = _time_state(model, batch, bins, x_np.dtype)
        time_chunks = choose_chunks(time_weights[0][0], batch * bins, x_np.dtype, fmt, threads)
        time_scratch = scratch_for(4 * model.hidden_size, time_chunks)

    for i in range(frames):
        z_t = frame_of(z[0], i) if z is not None else None  # (B, F or 1, H)
        if compiled_time:
            h_in = model.time_input(prev_frame.unsqueeze(-1))  # (B, F, H), eq. 8
            if z_t is not None:
                h_in = h_in + z_t
            time_frame(_np(h_in), rows_np, time_h, time_c, time_bufs, time_weights, half, time_scratch)
        else:
            rows_np = torch.stack(model.time_frame(prev_frame, z_t, states)).numpy()  # (L, B, F, H)
        if i < primed:
            prev_frame = x[:, i]
            continue
        noise = head.draw_noise((batch, bins), request.generator, dtype)  # (B, F, noise_width)
        if z is not None:
            zf = frame_of(z[1], i)  # (B, F or 1, H), may be a broadcast view
            zf = _np(zf.expand(batch, zf.shape[1], model.hidden_size))
        else:
            zf = no_zf
        frequency_frame(rows_np, zf, noise.numpy(), x_np, i, log_prob_np, freq_h, freq_c, freq_bufs, freq_weights,
                        half, freq_scratch, float(temperature), maths.draw, maths.log_prob, head_scratch)
        if request.progress is not None:
            request.progress(1)
        prev_frame = x[:, i]
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=(frames - primed) * bins)
