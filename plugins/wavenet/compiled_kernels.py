"""Numba kernels of the compiled WaveNet sampler: the whole generation loop — queues, dilated
convolutions, gated units, skip path, output network, the categorical head's projection and its
draw — for a block of samples per call (van den Oord et al. 2016 §2; Fast WaveNet, Paine et al.
2016; seed 000 Appendix A.2).

Weights come in the layouts :func:`melforge.plugins.wavenet.compiled_sampler.extract_weights`
builds, transposed so that every matrix–vector product is a sequence of contiguous
``y += W^T[k] · v[k]`` updates that LLVM vectorises without reassociating sums (as
:mod:`melforge.plugins.melnet.compiled_kernels`). Arrays are of the model's dtype (float32 or
float64) and the products run in it; the gate nonlinearities and the head's maths
(:mod:`melforge.plugins.categorical.maths`) run in float64 and the drawn value is rounded to the
model's dtype. ``fastmath={"contract"}`` only allows fused multiply–adds; ``error_model="numpy"``
drops division checks that would block vectorisation; ``tanh`` and ``σ`` use the vectorisable
``exp_vec`` of the MelNet kernels.

Queues: one flat buffer ``(batch, Σ_l q_l, R)``; layer ``l`` owns rows ``offsets[l] …
offsets[l] + q_l − 1`` with ``q_l = (kernel_size − 1) · d_l``, and its input at time ``τ`` lives
in row ``offsets[l] + τ mod q_l`` (zeros for ``τ < 0``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.plugins.categorical import maths as categorical
from melforge.core.vector_maths import exp_vec

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _matvec_acc(wt, v, y):
    """``y (n_out,) += wt^T v`` with ``wt: (n_in, n_out)`` row-major and ``v: (n_in,)``: four
    rows per pass over ``y`` (a quarter of the stores), each pass a contiguous vector loop."""
    n_in, n_out = wt.shape
    for k in range(0, n_in - 3, 4):
        v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        for o in range(n_out):
            y[o] += wt[k, o] * v0 + wt[k + 1, o] * v1 + wt[k + 2, o] * v2 + wt[k + 3, o] * v3
    for k in range(n_in - n_in % 4, n_in):
        vk = v[k]
        for o in range(n_out):
            y[o] += wt[k, o] * vk


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _stack_step(b, t, x_prev, cond_t, queues, offsets, dilations, taps, a, z, u, w_in, b_in, wt_conv, b_conv, wt_cond, wt_sr, b_res, b_skip):
    """The residual stack at time ``t`` for batch item ``b`` (eq. 3–5 of van den Oord et al.
    2016), in place on ``u = [skips (S) | h (R)]``: ``h = w_in x_{t−1} + b_in``,
    ``skips = Σ b_s``; per layer the taps from its queue (then ``h`` pushed into it), the
    gated units ``z``, and ``u += [W_s | W_r]^T z`` with ``h += b_r`` — the skip sum and the
    residual in one product (the last layer's ``W_r`` is zero). ``taps (K·R,)``, ``a (2R,)``,
    ``z (R,)`` are scratch; ``cond_t (C,)`` may be empty (no conditioning)."""
    n_layers = wt_conv.shape[0]
    r = z.shape[0]
    s = u.shape[0] - r
    kernel = wt_conv.shape[1] // r
    n_cond = cond_t.shape[0]
    for o in range(s):
        u[o] = b_skip[o]
    for o in range(r):
        u[s + o] = w_in[o] * x_prev + b_in[o]
    for l in range(n_layers):
        d = dilations[l]
        q = (kernel - 1) * d
        now = t % q if q > 0 else 0  # the row of time t (and of t - q, the oldest tap)
        for k in range(kernel - 1):  # tap k reads time t - (kernel - 1 - k) d, oldest first
            row = now - (kernel - 1 - k) * d
            row = offsets[l] + (row + q if row < 0 else row)
            for o in range(r):
                taps[k * r + o] = queues[b, row, o]
        for o in range(r):
            taps[(kernel - 1) * r + o] = u[s + o]
        if q > 0:  # after reading the taps: overwrite time t - q with time t
            for o in range(r):
                queues[b, offsets[l] + now, o] = u[s + o]
        for o in range(2 * r):
            a[o] = b_conv[l, o]
        for c in range(n_cond):  # V c: conditioning onto filter and gate
            zc = cond_t[c]
            for o in range(2 * r):
                a[o] += wt_cond[l, c, o] * zc
        _matvec_acc(wt_conv[l], taps, a)
        for o in range(r):  # z = tanh(filter) · σ(gate)
            f = float(a[o])
            g = float(a[r + o])
            z[o] = (1.0 - 2.0 / (exp_vec(2.0 * f) + 1.0)) / (1.0 + exp_vec(-g))
        for o in range(r):
            u[s + o] += b_res[l, o]
        _matvec_acc(wt_sr[l], z, u)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def generate(
    x, t_start, t_stop, sample, noise, cond, queues, offsets, dilations, log_prob,
    w_in, b_in, wt_conv, b_conv, wt_cond, wt_sr, b_res, b_skip, wt_out, b_out, wt_head, b_head,
    temperature,
):
    """Advance every sequence over samples ``t_start … t_stop − 1``, in place.

    With ``sample`` the samples are drawn: the stack, the output network
    ``ReLU(W_o ReLU(skips) + b_o)``, the head's logits ``W_θ y + b_θ``, the Gumbel-max draw
    (:func:`categorical.draw`) written to ``x`` as the level's value, and the untempered
    ``log softmax`` of the drawn level added to ``log_prob``. Without, ``x`` holds known
    (primed) samples and only the queues advance.

    Args:
        x: ``(B, T, 1)`` the waveform being drawn (companded values); reads ``x[:, t − 1]``.
        t_start, t_stop: the samples of this call.
        sample: draw (True) or feed known samples (False).
        noise: ``(t_stop − t_start, B, 1, classes)`` uniforms (``CategoricalHead.draw_noise``;
            any shape when not sampling).
        cond: ``(B, T or 1, C)`` conditioning features (``C = 0``: none).
        queues: ``(B, Σ_l q_l, R)`` the layers' past inputs (see the module docstring), updated.
        offsets, dilations: ``(L,)`` int64 first queue row and dilation of each layer.
        log_prob: ``(B,)`` summed untempered log-probability (nats), accumulated.
        w_in, b_in: ``(R,)`` the input 1×1 convolution (on the scalar ``x_{t−1}``).
        wt_conv: ``(L, K·R, 2R)`` each layer's dilated convolution, tap-major transposed
            (row ``k·R + i``: tap ``k``, input channel ``i``; outputs filter then gate).
        b_conv: ``(L, 2R)``.
        wt_cond: ``(L, C, 2R)`` ``[V_f; V_g]^T``.
        wt_sr: ``(L, R, S + R)`` ``[W_s | W_r]^T`` (the last layer's ``W_r`` zero).
        b_res: ``(L, R)`` residual biases (the last layer's zero).
        b_skip: ``(S,)`` the sum of the skip biases.
        wt_out, b_out: ``(S, S)`` ``W_o^T`` and ``(S,)``.
        wt_head, b_head: ``(S, classes)`` ``W_θ^T`` and ``(classes,)``.
        temperature: τ > 0 of the draw.
    """
    batch = x.shape[0]
    r = w_in.shape[0]
    s_width = b_skip.shape[0]
    classes = b_head.shape[0]
    dt = queues.dtype
    taps = np.empty(wt_conv.shape[1], dt)
    a = np.empty(2 * r, dt)
    z = np.empty(r, dt)
    u = np.empty(s_width + r, dt)  # [skips | h]
    y = np.empty(s_width, dt)
    logits = np.empty(classes, dt)
    score = np.empty(classes)
    shared_cond = cond.shape[1] == 1
    for b in range(batch):
        for t in range(t_start, t_stop):
            x_prev = float(x[b, t - 1, 0]) if t > 0 else 0.0
            cond_t = cond[b, 0] if shared_cond else cond[b, t]
            _stack_step(
                b, t, x_prev, cond_t, queues, offsets, dilations, taps, a, z, u,
                w_in, b_in, wt_conv, b_conv, wt_cond, wt_sr, b_res, b_skip,
            )
            if not sample:
                continue
            for o in range(s_width):  # output network on the skip sum
                u[o] = max(u[o], 0.0)
                y[o] = b_out[o]
            _matvec_acc(wt_out, u[:s_width], y)
            for o in range(s_width):
                y[o] = max(y[o], 0.0)
            for o in range(classes):  # the head's projection
                logits[o] = b_head[o]
            _matvec_acc(wt_head, y, logits)
            level = categorical.draw(logits, noise[t - t_start, b, 0], temperature, score)
            x[b, t, 0] = categorical.value_of(level, classes)
            log_prob[b] += categorical.log_prob(logits, level, score)
