"""Minibatch discrimination's pairwise term on the CPU, as compiled loops (numba).

The term is c_b(i, j) = exp(-sum_c |M_i,b,c - M_j,b,c|) for every kernel b and every
pair (i, j) of a batch, then o_b(i) = sum_{j != i} c_b(i, j), and its backward. Written
with eager PyTorch it is about 15 tensor operations each way over (B, n, n) temporaries,
and on the 2-D MLP it cost more than the rest of D (README, "Speed").

Each unordered pair is computed once (c_b(i, j) = c_b(j, i)), by diagonals: for d = 1 ..
n // 2 the pairs (i, i + d mod n), i = 0 .. n - 1, are one row of n, which covers every
pair once (for even n the last diagonal holds each of its pairs twice, once from each
end, and counts each once). On a copy of M's rows written twice over, i + d needs no
wrapping, so every loop runs over a whole contiguous row and vectorises. A pair's term
goes to i in place and to i + d shifted by d, two running sums folded at the end. The
self term (exactly 1) is never computed. Until 2 December 2026 the loops made the whole
n x n matrix and summed its rows in order: twice the distances and exps (the backward's
work is about the same either way: each pair's term now goes to both its members).

How the numbers come out the same on every machine: every loop is elementwise over i
(no fastmath, so the compiler may vectorise but never reorders a sum or fuses a
multiply-add), and the sums over the pairs run in a fixed order (d = 1, 2, ...). In
float32 exp is Cephes' expf (a polynomial after reducing by powers of two, within about 1
ulp; the `_neg_exp` below), written out so that it vectorises; in float64 it is the C
library's exp, so the float64 tests check the same loops against the formula to 1e-12.

`forward` and `backward` take numpy arrays (views of CPU tensors, no copies). The
autograd node in minibatch_discrimination.py calls them when `usable` says so (numba
installed, CPU tensors of float32 or float64) and otherwise computes the same formula
with tensor operations (on CUDA, or without numba).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

try:  # numba is in requirements.txt; without it the tensor formula is used
    import numba
    from numba.extending import overload
except ImportError:  # pragma: no cover - the tests run without the loops through ENABLED
    numba = None

# False: the tensor formula on the CPU too (the tests and `python -m ganapp bench` compare the two).
ENABLED = numba is not None

# Cephes expf: exp(x) = 2^z exp(r), z = round(x / ln 2), r = x - z ln 2 (in two parts).
_LOG2E = 1.44269504088896341
_LN2_HIGH, _LN2_LOW = 0.693359375, -2.12194440e-4
_EXPF_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
              5.0000001201e-1)
_EXPF_LOW = -87.0  # exp(-87) is 1.6e-38, near float32's smallest normal; below it, 0


def usable(tensor: torch.Tensor) -> bool:
    """Whether the compiled loops take this tensor (on the CPU, float32 or float64)."""
    return ENABLED and tensor.is_cpu and tensor.dtype in _TORCH_DTYPES


def _neg_exp(row, powers):
    """row[j] = exp(-row[j]), in place; `powers` is int32 scratch of row's length."""
    raise NotImplementedError  # replaced by the compiled versions below


def _jit(function):
    """numba.njit with an on-disk cache where a cache folder can be written, without one otherwise."""
    try:
        return numba.njit(cache=True, boundscheck=False)(function)
    except RuntimeError:  # no writable cache location: compile in each process
        return numba.njit(boundscheck=False)(function)


if numba is not None:
    @overload(_neg_exp, jit_options={"boundscheck": False})
    def _neg_exp_for(row, powers):
        if row.dtype == numba.float64:
            def neg_exp64(row, powers):
                for j in range(row.shape[0]):
                    row[j] = math.exp(-row[j])
            return neg_exp64
        if row.dtype != numba.float32:
            return None
        f32 = np.float32
        low, log2e, half, ln2_high, ln2_low = f32(_EXPF_LOW), f32(_LOG2E), f32(0.5), f32(_LN2_HIGH), f32(_LN2_LOW)
        p0, p1, p2, p3, p4, p5 = (f32(p) for p in _EXPF_POLY)
        one, bias = f32(1.0), np.int32(127)

        def neg_exp32(row, powers):
            scales = powers.view(np.float32)
            n = row.shape[0]
            for j in range(n):
                x0 = -row[j]
                x = low if x0 < low else x0  # NaN stays NaN
                z = np.floor(x * log2e + half)  # a float32 (math.floor would give an int)
                x = x - z * ln2_high
                x = x - z * ln2_low
                y = p0 * x + p1
                y = y * x + p2
                y = y * x + p3
                y = y * x + p4
                y = y * x + p5
                y = y * x * x + x + one
                row[j] = y * f32(x0 >= low)  # 0 below exp's range (a NaN stays NaN: NaN * 0)
                powers[j] = (np.int32(z) + bias) << 23  # the bits of the float 2^z
            for j in range(n):
                row[j] *= scales[j]
        return neg_exp32

    @_jit
    def _forward(m, closeness, others, divisor):
        """closeness[b, d - 1, i] = c_b(i, i + d mod n) for d = 1..n // 2, and others[j, b] =
        o_b(j) / divisor. m is (B, C, n)."""
        kernels, kernel_dim, n = m.shape
        h = n // 2
        ext = np.empty((kernel_dim, 2 * n), m.dtype)  # each row of M twice: i + d needs no wrapping
        own = np.empty(n, m.dtype)  # o_b(i)'s share from the pairs (i, i + d)
        shifted = np.empty(2 * n, m.dtype)  # o_b(j)'s share from the pairs (j - d, j), at j and n + j
        powers = np.empty(h * n, np.int32)
        for b in range(kernels):
            _doubled(m[b], ext)
            flat = closeness[b].reshape(h * n)
            for d in range(1, h + 1):
                row = flat[(d - 1) * n:d * n]
                a, s = ext[0, :n], ext[0, d:d + n]
                for i in range(n):
                    row[i] = abs(a[i] - s[i])
                for c in range(1, kernel_dim):  # L1 over C, in the order of C
                    a, s = ext[c, :n], ext[c, d:d + n]
                    for i in range(n):
                        row[i] += abs(a[i] - s[i])
            _neg_exp(flat, powers)
            own[:] = 0
            shifted[:] = 0
            for d in range(1, h + 1):
                row = flat[(d - 1) * n:d * n]
                if 2 * d == n:  # i + n/2 and i - n/2 are one member: row i holds the pair once for each
                    for i in range(n):
                        own[i] += row[i]
                else:
                    sh = shifted[d:d + n]
                    for i in range(n):
                        own[i] += row[i]
                        sh[i] += row[i]
            for j in range(n):
                others[j, b] = (own[j] + (shifted[j] + shifted[n + j])) / divisor

    @_jit
    def _backward(m, closeness, grad_others, divisor, grad_m):
        """grad_m[b, c, j] = d loss / d M_j,b,c, for grad_others (n, B) = d loss / d o. m is (B, C, n).

        With g = grad_others / divisor: d loss / d c_b(i, j) = g_i + g_j, and d c_b(i, j) /
        d M_i,b,c = -c_b(i, j) sign(M_i,b,c - M_j,b,c), the opposite for M_j: each pair
        (i, i + d) of `_forward`'s rows gives its term to i and, with the other sign, to i + d.
        """
        kernels, kernel_dim, n = m.shape
        h = n // 2
        ext = np.empty((kernel_dim, 2 * n), m.dtype)
        g = np.empty(2 * n, m.dtype)
        weight = np.empty(n, m.dtype)
        own = np.empty((kernel_dim, n), m.dtype)
        shifted = np.empty((kernel_dim, 2 * n), m.dtype)
        for b in range(kernels):
            for i in range(n):
                g[i] = grad_others[i, b] / divisor
                g[n + i] = g[i]
            _doubled(m[b], ext)
            own[:] = 0
            shifted[:] = 0
            for d in range(1, h + 1):
                row, gs = closeness[b, d - 1], g[d:d + n]
                for i in range(n):
                    weight[i] = (g[i] + gs[i]) * row[i]
                for c in range(kernel_dim):
                    a, s, mine = ext[c, :n], ext[c, d:d + n], own[c]
                    if 2 * d == n:
                        for i in range(n):
                            mine[i] -= np.sign(a[i] - s[i]) * weight[i]
                    else:
                        sh = shifted[c, d:d + n]
                        for i in range(n):
                            term = np.sign(a[i] - s[i]) * weight[i]
                            mine[i] -= term
                            sh[i] += term
            for c in range(kernel_dim):
                for j in range(n):
                    grad_m[b, c, j] = own[c, j] + (shifted[c, j] + shifted[c, n + j])

    @_jit
    def _doubled(rows, ext):
        """ext[c] = rows[c] twice over, for rows (C, n) and ext (C, 2n)."""
        kernel_dim, n = rows.shape
        for c in range(kernel_dim):
            for i in range(n):
                ext[c, i] = rows[c, i]
                ext[c, n + i] = rows[c, i]

    @_jit
    def _logit_backward(grad_logit, weight, others, grad_others, grad_weight):
        """For D's logit o W^T: grad_others[j, b] = grad_logit[j] W_b (the product autograd
        forms), and grad_weight[b] = sum_j grad_logit[j] others[j, b], j in order, as rows
        added one after the other (the order the CPU's matrix product takes for (1, n) x (n, B))."""
        n, kernels = others.shape
        for b in range(kernels):
            grad_weight[b] = 0
        for j in range(n):
            gj = grad_logit[j]
            for b in range(kernels):
                grad_others[j, b] = gj * weight[b]
                grad_weight[b] += gj * others[j, b]

    @_jit
    def _cross(m_points, m_batch, out):
        """out[p, b] = sum_j c_b(p, j) for points' M (B, C, P) against a batch's M (B, C, n):
        how close each point is to the batch's members (D's view of a point as one more
        member, ganapp.inside). Elementwise over the points, like the loops above."""
        kernels, kernel_dim, points = m_points.shape
        n = m_batch.shape[2]
        row = np.empty(points, m_points.dtype)
        total = np.empty(points, m_points.dtype)
        powers = np.empty(points, np.int32)
        for b in range(kernels):
            total[:] = 0
            for j in range(n):
                mj = m_batch[b, 0, j]
                for p in range(points):
                    row[p] = abs(m_points[b, 0, p] - mj)
                for c in range(1, kernel_dim):
                    mj = m_batch[b, c, j]
                    for p in range(points):
                        row[p] += abs(m_points[b, c, p] - mj)
                _neg_exp(row, powers)
                for p in range(points):
                    total[p] += row[p]
            for p in range(points):
                out[p, b] = total[p]

_TORCH_DTYPES = (torch.float32, torch.float64)


def forward(m: np.ndarray, divisor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(closeness (B, n // 2, n), o / divisor as (n, B)) for m = M as (B, C, n), C-contiguous:
    closeness[b, d - 1, i] = c_b(i, i + d mod n), each unordered pair once (for even n the
    last row holds the pairs (i, i + n/2) twice, once from each end)."""
    kernels, _, n = m.shape
    closeness = np.empty((kernels, n // 2, n), m.dtype)
    others = np.empty((n, kernels), m.dtype)
    _forward(m, closeness, others, m.dtype.type(divisor))
    return closeness, others


def backward(m: np.ndarray, closeness: np.ndarray, grad_others: np.ndarray, divisor: int = 1) -> np.ndarray:
    """d loss / d M as (B, C, n) for grad_others = d loss / d o as (n, B), and `forward`'s closeness."""
    grad_m = np.empty_like(m)
    _backward(m, closeness, np.ascontiguousarray(grad_others), m.dtype.type(divisor), grad_m)
    return grad_m


def logit_backward(m: np.ndarray, closeness: np.ndarray, others: np.ndarray, grad_logit: np.ndarray,
                   weight: np.ndarray, divisor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(d loss / d M as (B, C, n), d loss / d W as (B,)) for D's logit share o W^T, given
    grad_logit = d loss / d logit as (n,) and W as (B,)."""
    grad_others = np.empty_like(others)
    grad_weight = np.empty_like(weight)
    _logit_backward(grad_logit, weight, others, grad_others, grad_weight)
    grad_m = np.empty_like(m)
    _backward(m, closeness, grad_others, m.dtype.type(divisor), grad_m)
    return grad_m, grad_weight


def cross(m_points: np.ndarray, m_batch: np.ndarray) -> np.ndarray:
    """(P, B): sum over the batch's members j of c_b(p, j), for M of the points (B, C, P) and
    of the batch (B, C, n), both C-contiguous and of one dtype."""
    out = np.empty((m_points.shape[2], m_points.shape[0]), m_points.dtype)
    _cross(m_points, m_batch, out)
    return out


def warm_up() -> None:
    """Compile the float32 loops now (or load them from numba's cache: about 0.5 s), so the
    first minibatch step of a job does not pay for it. The job server's forkserver calls
    this once (ganapp/worker.py); the jobs it forks inherit the compiled code."""
    global ENABLED
    if not ENABLED:
        return
    try:
        m = np.linspace(0.0, 1.0, 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
        closeness, others = forward(m, 2)
        backward(m, closeness, others, 2)
        logit_backward(m, closeness, others, np.ones(3, np.float32), np.ones(2, np.float32), 2)
        cross(m, m)  # the heatmap's (ganapp.inside)
    except Exception as error:  # pragma: no cover - a platform numba cannot compile for
        ENABLED = False
        print(f"ganapp: minibatch discrimination's compiled loops are unavailable ({error}); "
              "using the tensor formula", file=sys.stderr)
