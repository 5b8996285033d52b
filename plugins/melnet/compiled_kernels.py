"""Numba kernels of the compiled MelNet sampler: the frequency-delayed stack, the head and the
draws of a whole frame, and the time-delayed stack of a frame, for all streams of a batch per
call (seed 000 eq. 2–9).

Batched: every product is :func:`melforge.plugins.batched_matmul.matmul` over the rows that
share its weights — the ``B`` streams at one element for the frequency-delayed LSTMs and the
head, the ``B`` streams at one bin for the time stack's frequency LSTMs, all ``B · F`` cells of
a frame for the time LSTMs and the time projections — so each layer's weights are read once
per element (per frame for the time stack), not once per stream. Weights come in the layouts
:func:`melforge.plugins.melnet.compiled_sampler.extract_weights` and ``extract_time_weights``
build (transposed, ``W^T (n_in, n_out)``), float32/float64 or 16-bit bit patterns (``half``).

The LSTM nonlinearities are :mod:`melforge.core.vector_maths`'s ``sigmoid_vec`` / ``tanh_vec``
(an exp in plain arithmetic), so that the loop over the 4H gates vectorises.
``fastmath={"contract"}`` only lets LLVM fuse multiply–adds; ``error_model="numpy"`` drops
division checks that would stop vectorisation.

The head's maths is not imported: :func:`frequency_frame` receives the head's declared
C-callable functions (``Head.compiled_maths(dtype)``) as arguments, typed by their signature,
so every kernel here is compiled once and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.vector_maths import sigmoid_vec, tanh_vec
from melforge.plugins.batched_matmul import matmul

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _lstm_cells(wt, bias, v, h, c, gates, half, scratch):
    """LSTM cell steps of ``N`` rows in place (gates i, f, g, o as ``nn.LSTM``): ``v (N, 2H)``
    holds ``[input | h]``; ``gates (N, 4H) = v [W_ih | W_hh]^T + b`` with ``wt (2H, 4H)``,
    ``bias (4H,) = b_ih + b_hh``; ``h, c (N, H)`` updated."""
    n, hidden = h.shape
    for r in range(n):
        for o in range(4 * hidden):
            gates[r, o] = bias[o]
    matmul(wt, v, gates, scratch, half)
    for r in range(n):
        for o in range(hidden):
            gi = sigmoid_vec(gates[r, o])
            gf = sigmoid_vec(gates[r, hidden + o])
            gg = tanh_vec(gates[r, 2 * hidden + o])
            go = sigmoid_vec(gates[r, 3 * hidden + o])
            c[r, o] = gf * c[r, o] + gi * gg
            h[r, o] = go * tanh_vec(c[r, o])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def frequency_element(rows, zf, x, i, j, h, c, bufs, weights, half, scratch):
    """Element ``(i, j)`` of every stream through the frequency-delayed stack (eq. 7, 9) and
    the head's projection: ``h^f[0] = W^f_0 x_{i,j−1} + b + W^f_z z``, per layer an LSTM step
    on ``h^f[l−1] + h^t_i[l]`` and ``h^f[l] = W^f_l h + b + h^f[l−1]``, then
    ``θ̂ = W_θ h^f[L] + b_θ`` into ``bufs[4] (B, num_params)``.

    Args:
        rows: ``(L, B, F, H)`` the frame-side inputs ``h^t_i[l]`` (``+ h^c_i[l]``).
        zf: ``(B, F or 1, H)`` frame ``i`` of ``W^f_z z`` (zeros without conditioning).
        x: ``(B, T, F)`` the spectrogram; ``x[:, i, j − 1]`` is read.
        h, c: ``(L, B, H)`` each layer's LSTM state along frequency, updated.
        bufs: ``(v (B, 2H), gates (B, 4H), hf (B, H), acc (B, H), params (B, num_params))``.
        weights: :func:`extract_weights`'s tuple (``compiled_sampler``).
        half, scratch: weight format and :func:`matmul`'s decode scratch.
    """
    w_in, b_in, wt_lstm, b_lstm, h0, c0, wt_proj, b_proj, wt_head, b_head = weights
    v, gates, hf, acc, params = bufs
    n_layers, batch, bins, hidden = rows.shape
    jz = 0 if zf.shape[1] == 1 else j
    for b in range(batch):
        prev = x[b, i, j - 1] if j > 0 else 0.0
        for o in range(hidden):
            hf[b, o] = w_in[o] * prev + b_in[o] + zf[b, jz, o]
    for l in range(n_layers):  # eq. 7
        for b in range(batch):
            for o in range(hidden):
                v[b, o] = hf[b, o] + rows[l, b, j, o]
                v[b, hidden + o] = h[l, b, o]
        _lstm_cells(wt_lstm[l], b_lstm[l], v, h[l], c[l], gates, half, scratch)
        for b in range(batch):
            for o in range(hidden):
                acc[b, o] = b_proj[l, o]
        matmul(wt_proj[l], h[l], acc, scratch, half)
        for b in range(batch):
            for o in range(hidden):
                hf[b, o] = acc[b, o] + hf[b, o]
    for b in range(batch):  # θ̂ = W_θ h^f[L] + b (eq. 2–5)
        for o in range(params.shape[1]):
            params[b, o] = b_head[o]
    matmul(wt_head, hf, params, scratch, half)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def frequency_frame(
    rows, zf, noise, x, i, log_prob, h, c, bufs, weights, half, scratch, temperature, draw, log_prob_of, head_scratch,
):
    """Sample frame ``i`` of every stream in place: ``x[:, i, :]`` and ``log_prob``
    (accumulated), element by element along frequency: :func:`frequency_element`, then per
    stream the head's ``draw`` (NaN and ±inf after rounding to the model's dtype become 0) and
    the untempered ``log_prob_of`` of the stored value.

    Args:
        noise: ``(B, F, noise_width)`` the frame's noise (``head.draw_noise((B, F))``).
        log_prob: ``(B,)`` summed untempered log-density (nats), accumulated.
        h, c: ``(L, B, H)`` scratch for the frequency LSTMs' states (set from ``h0, c0``).
        temperature: τ > 0.
        draw, log_prob_of, head_scratch: the head's ``CompiledMaths`` (C-callable) and its float64
            scratch.
        rows, zf, x, i, bufs, weights, half, scratch: as :func:`frequency_element`.
    """
    h0, c0 = weights[4], weights[5]
    n_layers, batch, bins, hidden = rows.shape
    params = bufs[4]
    n_params, n_noise, n_scratch = params.shape[1], noise.shape[2], head_scratch.shape[0]
    for l in range(n_layers):
        for b in range(batch):
            for o in range(hidden):
                h[l, b, o] = h0[l, o]
                c[l, b, o] = c0[l, o]
    for j in range(bins):
        frequency_element(rows, zf, x, i, j, h, c, bufs, weights, half, scratch)
        for b in range(batch):
            x[b, i, j] = draw(params[b].ctypes, n_params, noise[b, j].ctypes, n_noise, temperature,
                              head_scratch.ctypes, n_scratch)
            if not np.isfinite(x[b, i, j]):
                x[b, i, j] = 0
            log_prob[b] += log_prob_of(params[b].ctypes, n_params, float(x[b, i, j]), head_scratch.ctypes,
                                       n_scratch)  # the rounded value


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def time_frame(h_in, rows, time_h, time_c, bufs, weights, half, scratch):
    """One frame of the time-delayed stack (eq. 6, 8), all layers and streams: the compiled
    twin of ``MelNet.time_frame`` without the centralized stack.

    Args:
        h_in: ``(B, F, H)`` ``h^t_i[0] = W^t_0 x_{i-1} (+ W^t_z z)``.
        rows: ``(L, B, F, H)`` output, ``h^t_i[l]`` for ``l = 1..L``.
        time_h, time_c: ``(L, B, F, H)`` each time-LSTM's state after frame ``i-1`` (the
            trainable initial state before frame 0), updated in place.
        bufs: ``(v (B·F, 2H), gates (B·F, 4H), cat (B·F, 3H), acc (B·F, H), hs (B, H),
            cs (B, H))`` scratch.
        weights: ``(wt_time (L, 2H, 4H), b_time (L, 4H), wt_freq (L, 2, 2H, 4H),
            b_freq (L, 2, 4H), h0_freq (L, 2, H), c0_freq (L, 2, H), wt_proj (L, 3H, H),
            b_proj (L, H))`` — ``extract_time_weights``; ``wt_proj`` over
            ``[time | forward | backward]``.
        half, scratch: weight format and :func:`matmul`'s decode scratch.
    """
    wt_time, b_time, wt_freq, b_freq, h0_freq, c0_freq, wt_proj, b_proj = weights
    v, gates, cat, acc, hs, cs = bufs
    n_layers, batch, bins, hidden = rows.shape
    for l in range(n_layers):
        x_in = h_in if l == 0 else rows[l - 1]  # (B, F, H)
        for d in range(2):  # frequency LSTM: forward (d = 0) and backward (d = 1) along bins
            for b in range(batch):
                for o in range(hidden):
                    hs[b, o] = h0_freq[l, d, o]
                    cs[b, o] = c0_freq[l, d, o]
            for step in range(bins):
                f = step if d == 0 else bins - 1 - step
                for b in range(batch):
                    for o in range(hidden):
                        v[b, o] = x_in[b, f, o]
                        v[b, hidden + o] = hs[b, o]
                _lstm_cells(wt_freq[l, d], b_freq[l, d], v[:batch], hs, cs, gates[:batch], half, scratch)
                for b in range(batch):
                    for o in range(hidden):
                        cat[b * bins + f, (d + 1) * hidden + o] = hs[b, o]
        th = time_h[l].reshape(batch * bins, hidden)
        tc = time_c[l].reshape(batch * bins, hidden)
        xr = x_in.reshape(batch * bins, hidden)
        for r in range(batch * bins):
            for o in range(hidden):
                v[r, o] = xr[r, o]
                v[r, hidden + o] = th[r, o]
        _lstm_cells(wt_time[l], b_time[l], v, th, tc, gates, half, scratch)  # every cell of the frame
        for r in range(batch * bins):
            for o in range(hidden):
                cat[r, o] = th[r, o]
                acc[r, o] = b_proj[l, o]
        matmul(wt_proj[l], cat, acc, scratch, half)  # W^t_l [time | forward | backward] + b
        out = rows[l].reshape(batch * bins, hidden)
        for r in range(batch * bins):
            for o in range(hidden):
                out[r, o] = acc[r, o] + xr[r, o]
