"""Numba kernels of the compiled WaveNet sampler: the generation loop — queues, dilated
convolutions, gated units, skip path, output network, the head's projection and its draw — for
a block of samples and all streams of a batch per call (van den Oord et al. 2016 §2; Fast
WaveNet, Paine et al. 2016; seed 000 Appendix A.2).

Batched: at each time step every layer's weights are read once for all ``B`` streams — each
product is :func:`melforge.plugins.batched_matmul.matmul` over the batch, ``(B, n_in) @ W^T``,
not ``B`` matrix–vector products; queues and states stay per stream. Weights come in the
layouts :func:`melforge.plugins.wavenet.compiled_sampler.extract_weights` builds (transposed,
``W^T (n_in, n_out)``), float32/float64 or 16-bit bit patterns (``half``). The gate
nonlinearities run in the model's dtype through the vectorisable ``exp_vec``.

The head's maths is not imported: :func:`generate` receives the head's declared C-callable
functions (``Head.compiled_maths(dtype)``: ``draw``, ``log_prob``) as arguments, typed by
their signature, so every kernel here is compiled once and cached on disk.

Queues: one flat buffer ``(B, Σ_l q_l, R)``; layer ``l`` owns rows ``offsets[l] …
offsets[l] + q_l − 1`` with ``q_l = (kernel_size − 1) · d_l``, and its input at time ``τ`` lives
in row ``offsets[l] + τ mod q_l`` (zeros for ``τ < 0``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.vector_maths import exp_vec
from melforge.plugins.batched_matmul import matmul

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def stack_step(t, x, cond, queues, offsets, dilations, bufs, weights, half, scratch):
    """The residual stack at time ``t`` for every stream (eq. 3–5 of van den Oord et al. 2016),
    into ``u = bufs[3] (B, S + R) = [skips | h]``: ``h = w_in x_{t−1} + b_in``,
    ``skips = Σ b_s``; per layer the taps from the queues (then ``h`` pushed in), the gated
    units ``z = tanh(W_f ∗ x + V_f c) ⊙ σ(W_g ∗ x + V_g c)``, and ``u += z [W_s | W_r]^T`` with
    ``h += b_r`` — the skip sum and the residual in one product (the last layer's ``W_r`` is 0).

    Args:
        t: the time step; ``x (B, T, 1)`` is read at ``t − 1`` (0 before the start).
        cond: ``(B, T or 1, C)`` conditioning (``C = 0``: none).
        queues, offsets, dilations: see the module docstring; the queues are updated.
        bufs: ``(taps (B, K·R), a (B, 2R), z (B, R), u (B, S + R), c_t (B, C))`` scratch of the
            model's dtype.
        weights: the tuple of :func:`extract_weights` (``compiled_sampler``).
        half, scratch: weight format and :func:`matmul`'s decode scratch.
    """
    w_in, b_in, wt_conv, b_conv, wt_cond, wt_sr, b_res, b_skip = weights[:8]
    taps, a, z, u, c_t = bufs
    batch = x.shape[0]
    n_layers = b_conv.shape[0]
    r = z.shape[1]
    s = u.shape[1] - r
    kernel = taps.shape[1] // r
    n_cond = c_t.shape[1]
    shared = cond.shape[1] == 1
    for b in range(batch):
        x_prev = x[b, t - 1, 0] if t > 0 else 0.0
        for o in range(s):
            u[b, o] = b_skip[o]
        for o in range(r):
            u[b, s + o] = w_in[o] * x_prev + b_in[o]
        for c in range(n_cond):
            c_t[b, c] = cond[b, 0 if shared else t, c]
    for l in range(n_layers):
        d = dilations[l]
        q = (kernel - 1) * d
        now = t % q if q > 0 else 0  # the row of time t (and of t - q, the oldest tap)
        for b in range(batch):
            for k in range(kernel - 1):  # tap k reads time t - (kernel - 1 - k) d, oldest first
                row = now - (kernel - 1 - k) * d
                row = offsets[l] + (row + q if row < 0 else row)
                for o in range(r):
                    taps[b, k * r + o] = queues[b, row, o]
            for o in range(r):
                taps[b, (kernel - 1) * r + o] = u[b, s + o]
            if q > 0:  # after reading the taps: overwrite time t - q with time t
                for o in range(r):
                    queues[b, offsets[l] + now, o] = u[b, s + o]
            for o in range(2 * r):
                a[b, o] = b_conv[l, o]
        if n_cond:
            matmul(wt_cond[l], c_t, a, scratch, half)  # V c onto filter and gate
        matmul(wt_conv[l], taps, a, scratch, half)
        for b in range(batch):
            for o in range(r):  # z = tanh(filter) · σ(gate)
                f = a[b, o]
                g = a[b, r + o]
                z[b, o] = (1.0 - 2.0 / (exp_vec(2.0 * f) + 1.0)) / (1.0 + exp_vec(-g))
            for o in range(r):
                u[b, s + o] += b_res[l, o]
        matmul(wt_sr[l], z, u, scratch, half)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def output_step(u, relu, y, logits, weights, half, scratch):
    """The output network and the head's projection for every stream: ``relu = ReLU(skips)``,
    ``y = ReLU(relu W_o^T + b_o)``, ``logits = y W_θ^T + b_θ (B, classes)``; ``u (B, S + R)``
    from :func:`stack_step`, ``relu, y (B, S)`` scratch."""
    wt_out, b_out, wt_head, b_head = weights[8:]
    batch, s_width = relu.shape
    for b in range(batch):
        for o in range(s_width):
            relu[b, o] = max(u[b, o], 0.0)
            y[b, o] = b_out[o]
        for o in range(logits.shape[1]):
            logits[b, o] = b_head[o]
    matmul(wt_out, relu, y, scratch, half)
    for b in range(batch):
        for o in range(s_width):
            y[b, o] = max(y[b, o], 0.0)
    matmul(wt_head, y, logits, scratch, half)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def generate(
    x, t_start, t_stop, sample, noise, cond, queues, offsets, dilations, log_prob,
    bufs, out_bufs, weights, half, scratch, temperature, draw, log_prob_of, head_scratch,
):
    """Advance every stream over samples ``t_start … t_stop − 1``, in place.

    With ``sample`` the samples are drawn: :func:`stack_step`, :func:`output_step`, then per
    stream the head's ``draw`` (its value written to ``x``) and the untempered ``log_prob_of``
    of the value added to ``log_prob``. Without, ``x`` holds known (primed) samples and only
    the queues advance.

    Args:
        x: ``(B, T, 1)`` the waveform being drawn (companded values).
        t_start, t_stop: the samples of this call.
        sample: draw (True) or feed known samples (False).
        noise: ``(t_stop − t_start, B, 1, noise_width)`` the head's noise (any shape when not
            sampling).
        cond, queues, offsets, dilations, bufs, weights, half, scratch: as :func:`stack_step`.
        log_prob: ``(B,)`` summed untempered log-probability (nats), accumulated.
        out_bufs: ``(relu (B, S), y (B, S), logits (B, classes))`` scratch.
        temperature: τ > 0 of the draw.
        draw, log_prob_of, head_scratch: the head's ``CompiledMaths`` (C-callable) and its float64
            scratch.
    """
    batch = x.shape[0]
    relu, y, logits = out_bufs
    for t in range(t_start, t_stop):
        stack_step(t, x, cond, queues, offsets, dilations, bufs, weights, half, scratch)
        if not sample:
            continue
        output_step(bufs[3], relu, y, logits, weights, half, scratch)
        n_params, n_noise, n_scratch = logits.shape[1], noise.shape[3], head_scratch.shape[0]
        for b in range(batch):
            x[b, t, 0] = draw(logits[b].ctypes, n_params, noise[t - t_start, b, 0].ctypes, n_noise, temperature,
                              head_scratch.ctypes, n_scratch)
            log_prob[b] += log_prob_of(logits[b].ctypes, n_params, float(x[b, t, 0]), head_scratch.ctypes, n_scratch)
