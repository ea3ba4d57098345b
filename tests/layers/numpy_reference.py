"""Plain numpy (float64) reference implementations of the recurrent cells and attention.

Written from the textbook formulas, independent of Keras, to golden-test rnnkit.layers:

- vanilla RNN: h_t = act(x_t W_xh + h_{t-1} W_hh + b_h), readout y_t = h_t W_hy + b_y
- LSTM (Keras gate order i, f, c, o in the kernel columns):
  i = sigmoid(x W_i + h U_i + b_i), f = sigmoid(...), g = tanh(...), o = sigmoid(...)
  c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t)
- GRU with reset_after=True (Keras gate order z, r, h; bias rows: input bias, recurrent bias):
  z = sigmoid(x W_z + b_z + h U_z + r_z), r = sigmoid(x W_r + b_r + h U_r + r_r)
  n = tanh(x W_n + b_n + r * (h U_n + r_n)), h_t = z * h_{t-1} + (1 - z) * n

Keras stores kernels as (input_dim, gates * units), so the row-vector form x @ W is used.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_step(x, states, weights, activation="tanh"):
    kernel, recurrent_kernel, bias = weights
    (h,) = states
    pre = x @ kernel + h @ recurrent_kernel + bias
    h = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0.0)
    return h, [h]


def lstm_step(x, states, weights, activation="tanh"):
    kernel, recurrent_kernel, bias = weights
    h, c = states
    units = h.shape[-1]
    z = x @ kernel + h @ recurrent_kernel + bias
    i = sigmoid(z[..., :units])
    f = sigmoid(z[..., units : 2 * units])
    g = np.tanh(z[..., 2 * units : 3 * units])
    o = sigmoid(z[..., 3 * units :])
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, [h, c]


def gru_step(x, states, weights, activation="tanh"):
    kernel, recurrent_kernel, bias = weights
    (h,) = states
    units = h.shape[-1]
    input_bias, recurrent_bias = bias[0], bias[1]
    xw = x @ kernel + input_bias
    hu = h @ recurrent_kernel + recurrent_bias
    z = sigmoid(xw[..., :units] + hu[..., :units])
    r = sigmoid(xw[..., units : 2 * units] + hu[..., units : 2 * units])
    n = np.tanh(xw[..., 2 * units :] + r * hu[..., 2 * units :])
    h = z * h + (1.0 - z) * n
    return h, [h]


STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}
NUM_STATES = {"rnn": 1, "lstm": 2, "gru": 1}


def run_direction(
    kind, weights, x, lengths=None, backward=False, initial_state=None, activation="tanh"
):
    """One direction of one layer over a right-padded batch.

    x: (B, T, F); lengths: (B,) valid steps per row (default: all T).
    Only the valid part of each row is processed (a backward run starts at the row's last
    valid step). Returns outputs (B, T, U) — zero at padded steps, at step t the state after
    processing step t — and the final states (list of (B, U)).
    """
    x = np.asarray(x, np.float64)
    weights = [np.asarray(w, np.float64) for w in weights]
    batch, time = x.shape[:2]
    units = weights[1].shape[0]
    lengths = np.full(batch, time) if lengths is None else np.asarray(lengths)
    step = STEPS[kind]
    outputs = np.zeros((batch, time, units))
    final_states = []
    for b in range(batch):
        if initial_state is None:
            states = [np.zeros(units) for _ in range(NUM_STATES[kind])]
        else:
            states = [np.asarray(s[b], np.float64) for s in initial_state]
        order = range(lengths[b] - 1, -1, -1) if backward else range(lengths[b])
        for t in order:
            h, states = step(x[b, t], states, weights, activation)
            outputs[b, t] = h
        final_states.append(states)
    final = [np.stack([fs[i] for fs in final_states]) for i in range(NUM_STATES[kind])]
    return outputs, final


def merge(forward, backward, merge_mode):
    if merge_mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if merge_mode == "sum":
        return forward + backward
    if merge_mode == "mul":
        return forward * backward
    if merge_mode == "ave":
        return (forward + backward) / 2.0
    raise ValueError(merge_mode)


def run_stack(
    kind,
    layer_weights,
    x,
    lengths=None,
    bidirectional=False,
    merge_mode="concat",
    initial_state=None,
    activation="tanh",
):
    """A stack of layers. layer_weights: per layer, [fw_weights] or [fw_weights, bw_weights].

    Returns (sequence outputs (B, T, D), final states of the last layer (forward then
    backward), last outputs (B, D): the forward output at each row's last valid step merged
    with the backward output at step 0 — what Keras returns with return_sequences=False).
    """
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    lengths = np.full(batch, time) if lengths is None else np.asarray(lengths)
    outputs, states, last = x, [], None
    for index, weights in enumerate(layer_weights):
        init = initial_state if index == 0 else None
        if bidirectional:
            half = None if init is None else len(init) // 2
            fw_init = None if init is None else init[:half]
            bw_init = None if init is None else init[half:]
            fw, fw_states = run_direction(
                kind, weights[0], outputs, lengths, False, fw_init, activation
            )
            bw, bw_states = run_direction(
                kind, weights[1], outputs, lengths, True, bw_init, activation
            )
            rows = np.arange(batch)
            last = merge(fw[rows, lengths - 1], bw[:, 0], merge_mode)
            outputs = merge(fw, bw, merge_mode)
            states = fw_states + bw_states
        else:
            outputs, states = run_direction(
                kind, weights[0], outputs, lengths, False, init, activation
            )
            last = outputs[np.arange(batch), lengths - 1]
    return outputs, states, last


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def attention(scores, values, mask=None):
    """scores (B, Tq, Tv), values (B, Tv, Dv), mask (B, Tv) -> context, weights."""
    scores = np.asarray(scores, np.float64)
    if mask is not None:
        valid = np.asarray(mask, bool)[:, None, :]
        shifted = np.where(valid, scores, -np.inf)
        e = np.exp(shifted - shifted.max(-1, keepdims=True))  # exp(-inf) = 0 when masked
        weights = e / e.sum(-1, keepdims=True)
    else:
        weights = softmax(scores)
    return weights @ np.asarray(values, np.float64), weights


def bahdanau_scores(query, values, w1, w2, b2, v):
    """v^T tanh(q W1 + k W2 + b2); query (B, Tq, Dq), values (B, Tv, Dv)."""
    hidden = np.tanh((query @ w1)[:, :, None, :] + (values @ w2 + b2)[:, None, :, :])
    return (hidden @ v)[..., 0]


def luong_scores(query, values, kernel=None):
    """dot: q . k; general: q W k."""
    if kernel is not None:
        query = query @ kernel
    return query @ np.swapaxes(values, 1, 2)
