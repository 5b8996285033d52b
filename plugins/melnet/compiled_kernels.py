"""Numba kernels of the compiled MelNet sampler: one call runs the frequency-delayed stack, the
GMM head and the draws of a whole frame (seed 000 eq. 2–5, 7, 9).

Weights come in the layouts :func:`melforge.plugins.melnet.compiled_sampler.extract_weights`
builds (transposed so that every matrix–vector product is a sequence of contiguous
``y += W^T[k] · v[k]`` updates, which LLVM vectorises without reassociating sums). Arrays are of
the model's dtype (float32 or float64) and the matrix–vector products run in it; the scalar GMM
maths of each element (K values) runs in float64 and the drawn value is rounded to the model's
dtype.

``fastmath={"contract"}`` only lets LLVM fuse a multiply and an add into an FMA (as the BLAS
behind PyTorch does); no reassociation and no NaN/inf assumptions, so ``nan_to_num`` and the
log-sum-exp guards behave as in the torch head. ``error_model="numpy"`` drops Python's
division-by-zero checks, which would stop LLVM from vectorising the gate loops.

The LSTM nonlinearities are :mod:`melforge.core.vector_maths`'s ``sigmoid_vec`` / ``tanh_vec``
(an exp in plain arithmetic), so that the loop over the 4H gates vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.vector_maths import sigmoid_vec, tanh_vec
from melforge.plugins.gmm import maths as gmm

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def frequency_frame(
    rows, zf, noise, x, i, log_prob,
    w_in, b_in, wt_lstm, b_lstm, h0, c0, wt_proj, b_proj, wt_head, b_head, temperature,
):
    """Sample frame ``i`` in place: ``x[:, i, :]`` and ``log_prob`` (accumulated).

    Args:
        rows: ``(L, B, F, H)`` the frame-side input ``h^t_i[l]`` (``+ h^c_i[l]``) of each
            frequency-delayed layer, from ``MelNet.time_frame``.
        zf: ``(B, F or 1, H)`` frame ``i`` of the frequency-stack conditioning ``W^f_z z``
            (zeros when there is none).
        noise: ``(B, F, K + 1)`` per element ``[u_1..u_K, ε]`` (``GMMHead.draw_noise``).
        x: ``(B, T, F)`` the spectrogram being sampled; row ``i`` is written.
        i: the frame index.
        log_prob: ``(B,)`` summed untempered log-density (nats), accumulated.
        w_in, b_in: ``(H,)`` ``W^f_0`` (a Linear(1, H)) weight column and bias (eq. 9).
        wt_lstm: ``(L, 2H, 4H)`` ``[W_ih | W_hh]^T`` of each layer's LSTM, gates (i, f, g, o).
        b_lstm: ``(L, 4H)`` ``b_ih + b_hh``.
        h0, c0: ``(L, H)`` trainable initial LSTM states.
        wt_proj, b_proj: ``(L, H, H)`` ``W^f_l^T`` and ``(L, H)`` its bias (eq. 7).
        wt_head, b_head: ``(H, 3K)`` ``W_θ^T`` and ``(3K,)`` its bias; θ̂ is
            ``[μ_1..K, log σ̂_1..K, π̂_1..K]``.
        temperature: τ > 0 (mixture weights ``softmax(log π / τ)``, ``σ·√τ``).
    """
    n_layers, batch, bins, hidden = rows.shape
    k_comp = noise.shape[2] - 1
    n_gates = 4 * hidden
    dt = rows.dtype
    v = np.empty(2 * hidden, dt)  # [input; h] of one LSTM step
    gates = np.empty(n_gates, dt)
    h = np.empty((n_layers, hidden), dt)
    c = np.empty((n_layers, hidden), dt)
    hf = np.empty(hidden, dt)  # h^f[l] at the current element
    acc = np.empty(hidden, dt)
    params = np.empty(3 * k_comp, dt)
    mu = np.empty(k_comp)
    log_sigma = np.empty(k_comp)
    log_pi = np.empty(k_comp)
    score = np.empty(k_comp)
    shared_z = zf.shape[1] == 1

    for b in range(batch):
        for l in range(n_layers):
            for o in range(hidden):
                h[l, o] = h0[l, o]
                c[l, o] = c0[l, o]
        prev = 0.0  # x_{i,-1}
        for j in range(bins):
            jz = 0 if shared_z else j
            for o in range(hidden):  # h^f[0] = W^f_0 x_{i,j-1} + W^f_z z (eq. 9)
                hf[o] = w_in[o] * prev + b_in[o] + zf[b, jz, o]
            for l in range(n_layers):  # eq. 7
                for o in range(hidden):
                    v[o] = hf[o] + rows[l, b, j, o]
                    v[hidden + o] = h[l, o]
                for o in range(n_gates):
                    gates[o] = b_lstm[l, o]
                for kk in range(0, 2 * hidden - 3, 4):  # 4 rows at a time: a quarter of the stores
                    v0, v1, v2, v3 = v[kk], v[kk + 1], v[kk + 2], v[kk + 3]
                    for o in range(n_gates):
                        gates[o] += (
                            wt_lstm[l, kk, o] * v0 + wt_lstm[l, kk + 1, o] * v1
                            + wt_lstm[l, kk + 2, o] * v2 + wt_lstm[l, kk + 3, o] * v3
                        )
                for kk in range(2 * hidden - (2 * hidden) % 4, 2 * hidden):
                    vk = v[kk]
                    for o in range(n_gates):
                        gates[o] += wt_lstm[l, kk, o] * vk
                for o in range(hidden):
                    gi = sigmoid_vec(gates[o])
                    gf = sigmoid_vec(gates[hidden + o])
                    gg = tanh_vec(gates[2 * hidden + o])
                    go = sigmoid_vec(gates[3 * hidden + o])
                    c[l, o] = gf * c[l, o] + gi * gg
                    h[l, o] = go * tanh_vec(c[l, o])
                for o in range(hidden):
                    acc[o] = b_proj[l, o]
                for kk in range(hidden):
                    hk = h[l, kk]
                    for o in range(hidden):
                        acc[o] += wt_proj[l, kk, o] * hk
                for o in range(hidden):
                    hf[o] = acc[o] + hf[o]
            # Head: θ̂ = W_θ h^f[L] + b (eq. 2–5).
            for o in range(3 * k_comp):
                params[o] = b_head[o]
            for kk in range(hidden):
                hk = hf[kk]
                for o in range(3 * k_comp):
                    params[o] += wt_head[kk, o] * hk
            # The head's maths, from the GMM plugin (eq. 2–5, biasing §6).
            gmm.constrain(params, mu, log_sigma, log_pi)
            x[b, i, j] = gmm.draw(mu, log_sigma, log_pi, noise[b, j], temperature, score)
            if not np.isfinite(x[b, i, j]):  # as the head: NaN and ±inf draws become 0
                x[b, i, j] = 0
            log_prob[b] += gmm.log_prob(mu, log_sigma, log_pi, x[b, i, j], score)  # the rounded value
            prev = x[b, i, j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _lstm_step(wt, b, x_in, h, c, v, gates):
    """One LSTM cell step in place: ``h, c: (H,)`` ← cell(``x_in: (H,)``, ``(h, c)``), with
    ``wt: (2H, 4H) = [W_ih | W_hh]^T``, ``b: (4H,) = b_ih + b_hh``, gates (i, f, g, o) as
    ``nn.LSTM``; ``v (2H,)`` and ``gates (4H,)`` are scratch."""
    hidden = h.shape[0]
    n_gates = 4 * hidden
    n_in = 2 * hidden
    for o in range(hidden):
        v[o] = x_in[o]
        v[hidden + o] = h[o]
    for o in range(n_gates):
        gates[o] = b[o]
    for kk in range(0, n_in - 3, 4):
        v0, v1, v2, v3 = v[kk], v[kk + 1], v[kk + 2], v[kk + 3]
        for o in range(n_gates):
            gates[o] += wt[kk, o] * v0 + wt[kk + 1, o] * v1 + wt[kk + 2, o] * v2 + wt[kk + 3, o] * v3
    for kk in range(n_in - n_in % 4, n_in):
        vk = v[kk]
        for o in range(n_gates):
            gates[o] += wt[kk, o] * vk
    for o in range(hidden):
        gi = sigmoid_vec(gates[o])
        gf = sigmoid_vec(gates[hidden + o])
        gg = tanh_vec(gates[2 * hidden + o])
        go = sigmoid_vec(gates[3 * hidden + o])
        c[o] = gf * c[o] + gi * gg
        h[o] = go * tanh_vec(c[o])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def time_frame(h_in, rows, time_h, time_c, wt_time, b_time, wt_freq, b_freq, h0_freq, c0_freq, wt_proj, b_proj):
    """One frame of the time-delayed stack (eq. 6, 8), all layers: the compiled twin of
    ``MelNet.time_frame`` without the centralized stack.

    Args:
        h_in: ``(B, F, H)`` ``h^t_i[0] = W^t_0 x_{i-1} (+ W^t_z z)``.
        rows: ``(L, B, F, H)`` output, ``h^t_i[l]`` for ``l = 1..L``.
        time_h, time_c: ``(L, B, F, H)`` each time-LSTM's state after frame ``i-1`` (the
            trainable initial state before frame 0), updated in place.
        wt_time, b_time: ``(L, 2H, 4H)``, ``(L, 4H)`` the time LSTM's ``[W_ih | W_hh]^T``, biases.
        wt_freq, b_freq: ``(L, 2, 2H, 4H)``, ``(L, 2, 4H)`` the same for the frequency LSTM's
            forward (0) and backward (1) directions.
        h0_freq, c0_freq: ``(L, 2, H)`` its trainable initial states.
        wt_proj, b_proj: ``(L, 3H, H)`` ``W^t_l^T`` over ``[time | forward | backward]``, ``(L, H)``.
    """
    n_layers, batch, bins, hidden = rows.shape
    dt = rows.dtype
    v = np.empty(2 * hidden, dt)
    gates = np.empty(4 * hidden, dt)
    hs = np.empty(hidden, dt)
    cs = np.empty(hidden, dt)
    acc = np.empty(hidden, dt)
    both = np.empty((bins, 2, hidden), dt)  # forward / backward frequency-LSTM outputs
    for l in range(n_layers):
        for b in range(batch):
            for d in range(2):  # frequency LSTM: forward (d = 0) and backward (d = 1) along bins
                for o in range(hidden):
                    hs[o] = h0_freq[l, d, o]
                    cs[o] = c0_freq[l, d, o]
                for step in range(bins):
                    f = step if d == 0 else bins - 1 - step
                    x_in = h_in[b, f] if l == 0 else rows[l - 1, b, f]
                    _lstm_step(wt_freq[l, d], b_freq[l, d], x_in, hs, cs, v, gates)
                    for o in range(hidden):
                        both[f, d, o] = hs[o]
            for f in range(bins):
                x_in = h_in[b, f] if l == 0 else rows[l - 1, b, f]
                _lstm_step(wt_time[l], b_time[l], x_in, time_h[l, b, f], time_c[l, b, f], v, gates)
                for o in range(hidden):  # W^t_l [time | forward | backward] + b + h^t[l-1]
                    acc[o] = b_proj[l, o]
                th = time_h[l, b, f]
                for kk in range(hidden):
                    hk = th[kk]
                    for o in range(hidden):
                        acc[o] += wt_proj[l, kk, o] * hk
                for d in range(2):
                    for kk in range(hidden):
                        hk = both[f, d, kk]
                        for o in range(hidden):
                            acc[o] += wt_proj[l, (d + 1) * hidden + kk, o] * hk
                for o in range(hidden):
                    rows[l, b, f, o] = acc[o] + x_in[o]
