"""Minibatch discrimination, Salimans et al. (2016), section 3.2.

D gets, for each example, a measure of how close it is to the other examples of its
batch, so a generator that collapses to one mode is easy to spot:
    M_i = f(x_i) T,                  T in R^{A x B x C}, M_i in R^{B x C}
    c_b(i, j) = exp(-||M_i,b - M_j,b||_1)
    o(x_i)_b = sum_{j != i} c_b(i, j)
and concat[f(x_i), o(x_i)] goes on to D's output layer. Decisions (techniques.md,
section 2): the paper's layer with the self term excluded (the formula's j = i only adds
exactly 1), no bias, and computed separately for the real and the generated batch (the
training step's D update passes them as two groups of one call, each group compared only
with its own rows: Discriminator.forward_batches).

Sum or mean over the others (`reduction`): techniques.md's decision is the paper's sum,
and "sum" computes exactly that. "mean" divides by n - 1, the masked mean of the
official ImageNet code (openai/improved-gan#11; techniques.md test (b) names it), and is
ganapp's default -- a departure from the spec's decision, taken on measurement: on the
2-D sets the sum lets D win outright (a collapsed fake batch of 64 scores 63 per kernel
against about 7 for ring8's real batch, 8 points per mode), G's samples shrink to one
point where the L1 distance has no gradient, and ring8 ends with 0-6 of 8 modes; the
mean keeps all 8 (docs/results.md, section 4). The two forms span the same functions
(the output weight can absorb 1/(n-1)); what differs is the scale Adam starts from.
"""

import threading

import torch
from torch import nn


REDUCTIONS = ("sum", "mean")
LOG2E = 1.4426950408889634  # exp(-d) = 2^(-d log2 e): torch's exp2 is the faster kernel (see below)
# Scratch buffers up to this many bytes are kept between calls (one per name, dtype, device).
SCRATCH_KEPT_BYTES = 16 * 2**20


def minibatch_features(features: torch.Tensor, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """o(x) of shape (n, B) for features (n, A) and T (A, B, C); self excluded.

    reduction "sum" gives o = n - 1 for n identical rows, "mean" gives 1.
    Features of shape (G, n, A) are G minibatches of n rows each, every one compared only
    with the rows of its own minibatch: o of shape (G, n, B), equal to G separate calls
    (the training step's D update passes its real and its generated batch this way).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    if features.dim() not in (2, 3):
        raise ValueError(f"features must be (n, A) or (groups, n, A); got shape {tuple(features.shape)}")
    return _MinibatchFeatures.apply(features, tensor, reduction == "mean")


_scratch_pool: dict[tuple, torch.Tensor] = {}
_scratch_lock = threading.Lock()


def _take_scratch(name: str, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat tensor of at least `numel` elements for temporaries (never saved for backward).

    Taken out of a pool that keeps one buffer per name, dtype and device, so concurrent
    callers (the page's threads) never share one and the memory kept is bounded; hand it
    back with _give_scratch. Fresh tensors of this size would be mapped and unmapped by
    the allocator at every call (about 1,000 page faults a training step, measured).
    """
    with _scratch_lock:
        buffer = _scratch_pool.pop((name, like.dtype, like.device), None)
    if buffer is None or buffer.numel() < numel:
        buffer = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buffer


def _give_scratch(name: str, buffer: torch.Tensor) -> None:
    if buffer.numel() * buffer.element_size() <= SCRATCH_KEPT_BYTES:
        with _scratch_lock:
            _scratch_pool[(name, buffer.dtype, buffer.device)] = buffer


def _filled(count: int, value: float, like: torch.Tensor) -> torch.Tensor:
    """A (1, 1, count) tensor of `value`: a row that sums (times value) by matrix product."""
    return torch.full((1, 1, count), value, dtype=like.dtype, device=like.device)


class _MinibatchFeatures(torch.autograd.Function):
    """M = f T, then o, in one autograd node with a hand-written backward.

    Each unordered pair once, in circulant order: the pair (i, i + s mod n) for the shifts
    s = 1..n//2 and every i, so the tensors are (C, n//2, n, B), half of all ordered pairs and
    no diagonal. For even n the shift n/2 meets each pair twice (from i and from i + n/2);
    there each copy counts for its first sample only. M is kept with its first n//2 rows
    repeated after the last, so that "row i + s mod n" is a strided view, not a gather;
    o(x_i) adds the pairs where i comes first (a plain sum over s) and those where it comes
    second (a strided view of the closeness, whose rows wrap around in the same way).
    Features (G, n, A) add a leading group dimension to all of it.

    Why this form (measured on the 2-D MLP, batch 64, A 128, B 16, C 5, one thread): half
    the pairs; sums over C and over the shifts as matrix products with a row of ones, which
    beat torch's reductions over a middle dimension; exp(-d) as exp2(-d log2 e), because
    torch's exp here goes through a library path about 7x slower than exp2 (and 50x slower
    where d is large enough for exp(-d) to underflow); temporaries taken from scratch buffers
    kept between calls, because fresh ones of this size are mapped and unmapped by the
    allocator at every call (about 1,000 page faults a step, measured). Only M and the
    closeness are saved for the backward, which recomputes the differences. Against the
    former node (one kernel dimension at a time over all n^2 ordered pairs, torch.exp) the
    numbers agree to float rounding (tests/test_minibatch_fused.py), not bit for bit.

    Backward: c_b(i, j) enters o_b(i) and o_b(j), so d loss / d c_b(i, j) is g_i + g_j;
    d c / d M_i,b,c = -c sign(M_i,b,c - M_j,b,c), and the opposite for M_j. A copy of the
    shift n/2 enters only o of its first sample, so there it is g_i alone. Tied values have
    sign(0) = 0: no gradient through them, as with autograd of |x|.
    """

    @staticmethod
    def forward(ctx, features, tensor, mean):
        grouped = features.dim() == 3
        groups, n, in_features = features.shape if grouped else (1, *features.shape)
        _, kernels, kernel_dim = tensor.shape
        shifts, unique_shifts = n // 2, (n - 1) // 2  # all shifts; those that meet each pair once
        wide, nb = n + shifts, n * kernels  # rows kept per shift: n, and the shifts' wrap-around
        flat_tensor = tensor.reshape(in_features, kernels * kernel_dim)
        products = torch.mm(features.reshape(groups * n, in_features), flat_tensor)
        # M as (G, C, n + n//2, B): its rows, then rows 0 .. n//2 - 1 again, so that row
        # (i + s) mod n is row i + s of a strided view.
        m = torch.empty(groups, kernel_dim, wide, kernels, dtype=products.dtype, device=products.device)
        m[:, :, :n] = products.view(groups, n, kernels, kernel_dim).permute(0, 3, 1, 2)
        m[:, :, n:] = m[:, :, :shifts]
        partners = m.as_strided((groups, kernel_dim, shifts, n, kernels), (kernel_dim * wide * kernels, wide * kernels,
                                kernels, kernels, 1), m.storage_offset() + kernels)  # [g, c, s-1, i] = M_(i+s) mod n
        pairs = _take_scratch("pairs", groups * kernel_dim * shifts * nb, m)
        sums = _take_scratch("sums", groups * shifts * nb, m)
        try:
            differences = pairs[:groups * kernel_dim * shifts * nb].view(groups, kernel_dim, shifts, n, kernels)
            torch.sub(m[:, :, None, :n], partners, out=differences).abs_()
            # -log2(e) times the L1 distance over C: a (1 x C) by (C x pairs) product per group.
            distances = sums[:groups * shifts * nb].view(groups, 1, shifts * nb)
            torch.bmm(_filled(kernel_dim, -LOG2E, m).expand(groups, 1, kernel_dim),
                      differences.view(groups, kernel_dim, shifts * nb), out=distances)
            # c(i, i + s) at [g, s-1, n//2 + i]; its first n//2 columns repeat the last ones.
            closeness = torch.empty(groups, shifts, wide, kernels, dtype=m.dtype, device=m.device)
            torch.exp2(distances.view(groups, shifts, n, kernels), out=closeness[:, :, shifts:])
        finally:
            _give_scratch("pairs", pairs)
            _give_scratch("sums", sums)
        scale = 1.0 / (n - 1) if mean and n > 1 else 1.0
        flat = closeness.view(groups, shifts, wide * kernels)
        # o(x_i): the pairs where i comes first (row n//2 + i of every shift), then those where it
        # comes second, c(i - s mod n, i) at column n//2 + i - s of shift s (a strided view).
        others = torch.bmm(_filled(shifts, scale, m).expand(groups, 1, shifts), flat[:, :, shifts * kernels:])
        if unique_shifts:
            closeness[:, :, :shifts] = closeness[:, :, n:]
            second = closeness.as_strided((groups, unique_shifts, nb),
                                          (shifts * wide * kernels, (wide - 1) * kernels, 1),
                                          closeness.storage_offset() + (shifts - 1) * kernels)
            others.baddbmm_(_filled(unique_shifts, scale, m).expand(groups, 1, unique_shifts), second)
        ctx.save_for_backward(features, tensor, m, closeness)
        ctx.scale, ctx.grouped = scale, grouped
        others = others.view(groups, n, kernels)
        return others if grouped else others[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_others):
        features, tensor, m, closeness = ctx.saved_tensors
        grouped = ctx.grouped
        groups, n, in_features = features.shape if grouped else (1, *features.shape)
        _, kernels, kernel_dim = tensor.shape
        shifts, nb = n // 2, n * kernels
        wide = n + shifts
        grad = torch.empty(groups, wide, kernels, dtype=grad_others.dtype, device=grad_others.device)
        grad[:, :n] = grad_others
        grad[:, n:] = grad[:, :shifts]
        pairs = _take_scratch("pairs", groups * kernel_dim * shifts * wide * kernels, grad)
        sums = _take_scratch("sums", groups * shifts * nb, grad)
        try:
            # (g_i + g_(i+s)) c(i, i + s): (G, n//2, n, B); g_i alone for the second copy of shift n/2.
            weight = sums[:groups * shifts * nb].view(groups, shifts, n, kernels)
            following = grad.as_strided((groups, shifts, n, kernels), (wide * kernels, kernels, kernels, 1),
                                        grad.storage_offset() + kernels)  # [g, s-1, i] = g_(i+s) mod n
            torch.add(grad[:, None, :n], following, out=weight)
            if n % 2 == 0 and shifts:
                weight[:, shifts - 1] = grad[:, :n]
            weight.mul_(closeness[:, :, shifts:])
            # v = sign(M_i - M_(i+s)) (g_i + g_(i+s)) c at [g, c, s-1, n//2 + i], the first n//2
            # columns repeating the last ones, as in the closeness.
            signed = pairs[:groups * kernel_dim * shifts * wide * kernels]
            signed = signed.view(groups, kernel_dim, shifts, wide, kernels)
            first = signed[:, :, :, shifts:]
            partners = m.as_strided((groups, kernel_dim, shifts, n, kernels), (kernel_dim * wide * kernels,
                                    wide * kernels, kernels, kernels, 1), m.storage_offset() + kernels)
            torch.sub(m[:, :, None, :n], partners, out=first).sign_().mul_(weight[:, None])
            signed[:, :, :, :shifts] = signed[:, :, :, n:]
            # dL/dM_i = -(sum of v over the pairs where i is first) + (sum where it is second).
            flat = signed.view(groups * kernel_dim, shifts, wide * kernels)
            ones = _filled(shifts, ctx.scale, grad).expand(groups * kernel_dim, 1, shifts)
            grad_m = torch.bmm(ones, flat[:, :, shifts * kernels:]).neg_()
            if shifts:  # n = 1 has no pairs
                second = flat.as_strided((groups * kernel_dim, shifts, nb),
                                         (shifts * wide * kernels, (wide - 1) * kernels, 1),
                                         flat.storage_offset() + (shifts - 1) * kernels)
                grad_m.baddbmm_(ones, second)
        finally:
            _give_scratch("pairs", pairs)
            _give_scratch("sums", sums)
        grad_m = grad_m.view(groups, kernel_dim, n, kernels).permute(0, 2, 3, 1).reshape(groups * n, -1)
        grad_features = grad_tensor = None
        if ctx.needs_input_grad[0]:
            grad_features = torch.mm(grad_m, tensor.reshape(in_features, kernels * kernel_dim).t())
            grad_features = grad_features.view(groups, n, in_features) if grouped else grad_features
        if ctx.needs_input_grad[1]:
            grad_tensor = torch.mm(features.reshape(groups * n, in_features).t(), grad_m)
            grad_tensor = grad_tensor.view(in_features, kernels, kernel_dim)
        return grad_features, grad_tensor, None


class MinibatchDiscrimination(nn.Module):
    """(n, A) -> (n, A + B): the input features with the minibatch features appended."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int, *, reduction: str = "sum",
                 init_std: float = 0.05):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.reduction = reduction
        # The official code draws theta ~ N(0, 0.05) before weight norm; a small scale keeps
        # the first distances around 1, where exp(-d) still has a useful gradient.
        self.tensor = nn.Parameter(torch.randn(in_features, kernels, kernel_dim) * init_std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, minibatch_features(features, self.tensor, self.reduction)], dim=1)

    def extra_repr(self) -> str:
        return f"A={self.in_features}, B={self.kernels}, C={self.kernel_dim}, reduction={self.reduction}"
