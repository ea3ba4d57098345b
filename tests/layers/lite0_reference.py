"""A pure-numpy EfficientNet-Lite0 forward pass on the PyTorch state dict, written from the
original PyTorch model's definition (``efficientnet_lite_pytorch`` 0.1.0, model.py/utils.py),
independently of the Keras port: NCHW activations, OIHW weights, grouped convolutions, and the
original's static "same" padding (``Conv2dStaticSamePadding``: total padding
``max((ceil(i/s) - 1) * s + k - i, 0)``, of which ``total // 2`` before and the rest after),
BatchNorm2d in eval mode with ``eps = 1e-3``, ReLU6, residual when stride 1 and in == out
channels, global average pool, then the linear classifier. Computed in float64.

It stands in for the original model (torch is not installed in this project): the weight
conversion test compares the Keras port's logits and top-1 classes with it.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-3
# (repeats, kernel, stride, expand ratio, input filters, output filters) — Lite0's block table
BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


def same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x: np.ndarray, weight: np.ndarray, stride: int, groups: int = 1) -> np.ndarray:
    """``x (C, H, W)``, ``weight (O, C/groups, k, k)`` → ``(O, H', W')`` with static same padding
    (cross-correlation, as torch.nn.functional.conv2d)."""
    channels, height, width = x.shape
    out_channels, group_in, k, _ = weight.shape
    top, bottom = same_pad(height, k, stride)
    left, right = same_pad(width, k, stride)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    out_h = (padded.shape[1] - k) // stride + 1
    out_w = (padded.shape[2] - k) // stride + 1
    # patches (C, out_h, out_w, k, k)
    s_c, s_h, s_w = padded.strides
    patches = np.lib.stride_tricks.as_strided(
        padded, shape=(channels, out_h, out_w, k, k),
        strides=(s_c, s_h * stride, s_w * stride, s_h, s_w))
    group_out = out_channels // groups
    result = np.empty((out_channels, out_h, out_w))
    for g in range(groups):
        block = patches[g * group_in:(g + 1) * group_in]  # (gi, oh, ow, k, k)
        w = weight[g * group_out:(g + 1) * group_out]  # (go, gi, k, k)
        result[g * group_out:(g + 1) * group_out] = np.einsum("chwij,ocij->ohw", block, w)
    return result


def depthwise(x: np.ndarray, weight: np.ndarray, stride: int) -> np.ndarray:
    """``groups == channels`` convolution, tap by tap (same result as :func:`conv2d` with
    ``groups=C``, much faster)."""
    channels, height, width = x.shape
    k = weight.shape[-1]
    top, bottom = same_pad(height, k, stride)
    left, right = same_pad(width, k, stride)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    out_h = (padded.shape[1] - k) // stride + 1
    out_w = (padded.shape[2] - k) // stride + 1
    result = np.zeros((channels, out_h, out_w))
    for i in range(k):
        for j in range(k):
            tap = padded[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            result += tap * weight[:, 0, i, j][:, None, None]
    return result


def batch_norm(x: np.ndarray, state: dict, prefix: str) -> np.ndarray:
    gamma, beta = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    scale = gamma / np.sqrt(var + EPS)
    return x * scale[:, None, None] + (beta - mean * scale)[:, None, None]


def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def block_table():
    """One ``(kernel, stride, expand, in, out)`` per block (16 for Lite0)."""
    table = []
    for repeats, kernel, stride, expand, inp, out in BLOCKS:
        table.append((kernel, stride, expand, inp, out))
        table += [(kernel, 1, expand, out, out)] * (repeats - 1)
    return table


def features(image_chw: np.ndarray, state: dict, last_block: int | None = None) -> np.ndarray:
    """Normalized image ``(3, H, W)`` → head features ``(1280, H/32, W/32)``, or the output of
    block ``last_block`` (no head)."""
    s = {k: np.asarray(v, np.float64) for k, v in state.items()}
    x = relu6(batch_norm(conv2d(np.asarray(image_chw, np.float64), s["_conv_stem.weight"], 2),
                         s, "_bn0"))
    for index, (_kernel, stride, expand, inp, out) in enumerate(block_table()):
        p = f"_blocks.{index}"
        h = x
        if expand != 1:
            h = relu6(batch_norm(conv2d(h, s[f"{p}._expand_conv.weight"], 1), s, f"{p}._bn0"))
        h = relu6(batch_norm(depthwise(h, s[f"{p}._depthwise_conv.weight"], stride), s,
                             f"{p}._bn1"))
        h = batch_norm(conv2d(h, s[f"{p}._project_conv.weight"], 1), s, f"{p}._bn2")
        x = h + x if stride == 1 and inp == out else h
        if index == last_block:
            return x
    return relu6(batch_norm(conv2d(x, s["_conv_head.weight"], 1), s, "_bn1"))


def logits(image_chw: np.ndarray, state: dict) -> np.ndarray:
    pooled = features(image_chw, state).mean(axis=(1, 2))
    return pooled @ np.asarray(state["_fc.weight"], np.float64).T + np.asarray(
        state["_fc.bias"], np.float64)
