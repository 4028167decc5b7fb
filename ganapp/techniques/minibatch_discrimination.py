"""Minibatch discrimination, Salimans et al. (2016), section 3.2.

D gets, for each example, a measure of how close it is to the other examples of its
batch, so a generator that collapses to one mode is easy to spot:
    M_i = f(x_i) T,                  T in R^{A x B x C}, M_i in R^{B x C}
    c_b(i, j) = exp(-||M_i,b - M_j,b||_1)
    o(x_i)_b = sum_{j != i} c_b(i, j)
and concat[f(x_i), o(x_i)] goes on to D's output layer. Decisions (techniques.md,
section 2): the paper's layer with the self term excluded (the formula's j = i only adds
exactly 1), no bias, and computed separately for the real and the generated batch (each
batch's head on its own batch, also where D's step computes both heads in one node).

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

import torch
from torch import nn
from torch.autograd.function import once_differentiable


REDUCTIONS = ("sum", "mean")


_kernel = None


def _loops():
    """The compiled loops' module (minibatch_kernel.py), imported at the first use (numba
    takes about 0.3 s to import, and the web server never needs it); kept, since an import
    statement costs microseconds at every call and a D call makes two."""
    global _kernel
    if _kernel is None:
        from . import minibatch_kernel
        _kernel = minibatch_kernel
    return _kernel


def _is_mean(reduction: str) -> bool:
    """Whether `reduction` is the mean (else the sum); an unknown one is refused."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    return reduction == "mean"


def minibatch_features(features: torch.Tensor, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """o(x) of shape (n, B) for features (n, A) and T (A, B, C); self excluded.

    reduction "sum" gives o = n - 1 for n identical rows, "mean" gives 1.
    """
    return _MinibatchFeatures.apply(features, tensor, _is_mean(reduction))


def minibatch_head(features: torch.Tensor, output_weight: torch.Tensor, output_bias: torch.Tensor,
                   tensor: torch.Tensor, weight: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """D's logit, (n,), with minibatch discrimination: its output layer on concat[f(x), o(x)].

    Written as f W_f^T + b + o(x) W^T, with W_f (1, A) and b (1,) the output layer's
    weights for the features and W (1, B) those of the minibatch features: the same numbers
    as nn.Linear(A, 1) on the features plus a bias-free nn.Linear(B, 1) on o(x), squeezed
    (one addition, which is commutative), in one autograd node instead of six.
    """
    return _MinibatchHead.apply(features, output_weight, output_bias, tensor, weight, _is_mean(reduction))


def minibatch_head_pair(real_features: torch.Tensor, fake_features: torch.Tensor, output_weight: torch.Tensor,
                        output_bias: torch.Tensor, tensor: torch.Tensor, weight: torch.Tensor,
                        reduction: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """(D's logit on the real batch, on the generated batch), each (n,): `minibatch_head` on
    each batch (computed separately, real with real and fake with fake), with the same
    numbers to the bit, in one autograd node instead of two (D's step calls D on both)."""
    shared = (output_weight, output_bias, tensor, weight)
    return _MinibatchHeadPair.apply(real_features, fake_features, *shared, *shared, _is_mean(reduction))


def transposed_m(features: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """M transposed, (B, C, n) = T^T f^T: one row over the batch for each kernel and
    dimension, contiguous with no copy (the product of transposed views is contiguous)."""
    return _m_product(_flat_t(tensor), features.t(), tensor)


def _divisor(n: int, mean: bool) -> int:
    """What o is divided by: n - 1 others for the mean (1 for a batch of one), 1 for the sum."""
    return n - 1 if mean and n > 1 else 1


def _pairwise(m: torch.Tensor, mean: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(closeness as the loops or the formula give it, o / divisor as (n, B), divisor) for M as (B, C, n)."""
    divisor = _divisor(m.shape[2], mean)
    loops = _loops()
    if loops.usable(m):  # compiled loops on the CPU (minibatch_kernel.py)
        closeness, others = loops.forward(m.numpy(), divisor)
        return torch.from_numpy(closeness), torch.from_numpy(others), divisor
    return (*_closeness_and_others(m, divisor), divisor)


class _MinibatchFeatures(torch.autograd.Function):
    """M = f T, then o, in one autograd node with a hand-written backward.

    Why: on the 2-D MLP this term made D's step several times dearer (torch.cdist's
    forward, its backward run once for each of its two inputs, and the exp, neg, sum and
    reshaping nodes around it). Here one node does it all: on the CPU the pairwise term
    runs as compiled loops (minibatch_kernel.py), elsewhere as tensor operations over
    (B, n, n) temporaries, one kernel dimension at a time (measured: README, "Speed").
    M is computed transposed, (B, C, n), so that each kernel's rows over the batch are
    contiguous for either.

    Backward: c_b(i, j) enters o_b(i) and o_b(j), so d loss / d c_b(i, j) is
    g_i + g_j (the same for both orders); d c / d M_i,b,c = -c sign(M_i,b,c - M_j,b,c),
    and the opposite for M_j, which the sum over the pair (j, i) supplies. The diagonal
    has sign(0) = 0, so the self term gets no gradient, as with cdist.
    """

    @staticmethod
    def forward(ctx, features, tensor, mean):
        m = transposed_m(features, tensor)
        closeness, others, ctx.divisor = _pairwise(m, mean)
        ctx.save_for_backward(features, tensor, m, closeness)
        return others

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_others):
        features, tensor, m, closeness = ctx.saved_tensors
        loops = _loops()
        if loops.usable(m):
            grad_m = torch.from_numpy(loops.backward(m.numpy(), closeness.numpy(), grad_others.numpy(), ctx.divisor))
        else:
            grad_m = _grad_m(m, closeness, grad_others / ctx.divisor)
        needs = ctx.needs_input_grad
        grad_m_t = grad_m.view(-1, features.shape[0]).t()  # (n, B C): d loss / d M
        return (*_head_products(grad_m_t, _flat_t(tensor), features.t(), tensor, None, needs[0], needs[1]), None)


def _flat_t(tensor: torch.Tensor) -> torch.Tensor:
    """T as (B C, A), a transposed view: M^T = T^T f^T is its product by f^T, and f's
    gradient is d loss / d M times it. Made once per node and shared by both directions."""
    return tensor.reshape(tensor.shape[0], -1).t()


def _m_product(flat_t: torch.Tensor, features_t: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """M transposed, (B, C, n) = T^T f^T, from T's and f's transposed views (as `transposed_m`)."""
    return torch.mm(flat_t, features_t).view(tensor.shape[1], tensor.shape[2], features_t.shape[1])


def _head_products(grad_m_t: torch.Tensor, flat_t: torch.Tensor, features_t: torch.Tensor, tensor: torch.Tensor,
                   grad_features: torch.Tensor | None, need_features: bool, need_tensor: bool):
    """(d loss / d f: d loss / d M times T, added to `grad_features` (the output layer's
    share) when given; d loss / d T), each None when not needed, from d loss / d M as (n, B C)."""
    if need_features:
        own = torch.mm(grad_m_t, flat_t)
        grad_features = own if grad_features is None else grad_features.add_(own)
    return grad_features, torch.mm(features_t, grad_m_t).view_as(tensor) if need_tensor else None


def _head_forward(features, output_weight_t, output_bias, flat_t, tensor, weight_t, mean, loops):
    """One batch's logit, (n,), and what its backward needs (`_head_backward`): the output
    layer as nn.Linear(A, 1) computes it (addmm), plus o W^T."""
    features_t = features.t()
    m = _m_product(flat_t, features_t, tensor)
    divisor = _divisor(m.shape[2], mean)
    if loops.usable(m):  # compiled loops (minibatch_kernel.py); their arrays stay numpy arrays until the backward
        m = m.numpy()
        closeness, others_array = loops.forward(m, divisor)
        others = torch.from_numpy(others_array)
        arrays = m, closeness, others_array, divisor, features_t, True
    else:
        closeness, others = _closeness_and_others(m, divisor)
        arrays = m, closeness, others, divisor, features_t, False
    logit = torch.addmm(output_bias, features, output_weight_t)  # nn.Linear(A, 1) on f
    logit += torch.mm(others, weight_t)  # o W^T
    return logit.squeeze(1), arrays


def _head_backward(grad_logit, features, output_weight, flat_t, tensor, weight, weight_array, arrays, needs):
    """The gradients (f, output weight, output bias, T, W) of one batch's logit; `needs` says
    which of the five are wanted (None for the others); `weight_array` is W as a numpy
    array (B,) for the loops."""
    need_features, need_output_weight, need_output_bias, need_tensor, need_weight = needs
    m, closeness, others, divisor, features_t, compiled = arrays
    grad = grad_logit.unsqueeze(1)  # (n, 1)
    grad_output_weight = grad.t().mm(features) if need_output_weight else None
    grad_output_bias = grad.sum(0) if need_output_bias else None
    if compiled:
        grad_m, grad_weight = _loops().logit_backward(m, closeness, others, grad_logit.contiguous().numpy(),
                                                      weight_array, divisor)
        grad_m_t = torch.from_numpy(grad_m.reshape(-1, m.shape[2])).t()  # (n, B C): d loss / d M
        grad_weight = torch.from_numpy(grad_weight).view_as(weight) if need_weight else None
    else:
        grad_weight = torch.mm(grad.t(), others) if need_weight else None
        grad_m_t = _grad_m(m, closeness, grad * weight / divisor).view(-1, m.shape[2]).t()
    grad_features = grad.mm(output_weight) if need_features else None  # the output layer's share
    grad_features, grad_tensor = _head_products(grad_m_t, flat_t, features_t, tensor, grad_features, need_features,
                                                need_tensor)
    return grad_features, grad_output_weight, grad_output_bias, grad_tensor, grad_weight


class _MinibatchHead(torch.autograd.Function):
    """D's logit with minibatch discrimination (`minibatch_head`): the output layer and the
    minibatch features in one node, so that a D call adds one node to vanilla's graph, not
    six (the separate output layer's addmm, transpose, addition and squeeze, and the
    minibatch node with its own product by W). Each number is computed by the same
    operation as with the separate layers, so a run gives the same numbers to the bit
    (tests/test_minibatch_fused.py): the output layer as nn.Linear (addmm), its gradients as
    autograd forms them (the bias's a sum over the batch, the weight's a product by the
    features), and the two gradients of f added once.
    """

    @staticmethod
    def forward(ctx, features, output_weight, output_bias, tensor, weight, mean):
        ctx.flat_t = _flat_t(tensor)
        logit, ctx.arrays = _head_forward(features, output_weight.t(), output_bias, ctx.flat_t, tensor, weight.t(),
                                          mean, _loops())
        ctx.save_for_backward(features, output_weight, tensor, weight)
        return logit

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logit):
        features, output_weight, tensor, weight = ctx.saved_tensors
        weight_array = weight.detach().view(-1).numpy() if ctx.arrays[-1] else None
        return (*_head_backward(grad_logit, features, output_weight, ctx.flat_t, tensor, weight, weight_array,
                                ctx.arrays, ctx.needs_input_grad[:5]), None)


class _MinibatchHeadPair(torch.autograd.Function):
    """D's logits on the real and on the generated batch (`minibatch_head_pair`): two
    `_MinibatchHead`s in one node, the cost of one node less in every D step (a Python-
    written node costs about 70 us a call here, forward and backward, with no work in it).

    Each batch's numbers are computed exactly as `_MinibatchHead` computes them, and the
    shared weights come in twice, once for each batch, the generated batch's first: autograd
    then adds each batch's gradient to a weight's on its own, in the order two nodes gave
    them (the generated batch's node, made later, ran first). The order matters with
    historical averaging, whose penalty adds a third gradient: a sum of three floats depends
    on its order (tests/test_minibatch_fused.py checks the bits).
    """

    @staticmethod
    def forward(ctx, real_features, fake_features, output_weight, output_bias, tensor, weight,
                _output_weight_again, _output_bias_again, _tensor_again, _weight_again, mean):
        shared = output_weight.t(), output_bias, _flat_t(tensor), tensor, weight.t()
        real_logit, real_arrays = _head_forward(real_features, *shared, mean, _loops())
        fake_logit, fake_arrays = _head_forward(fake_features, *shared, mean, _loops())
        ctx.flat_t = shared[2]
        ctx.arrays = real_arrays, fake_arrays
        ctx.set_materialize_grads(False)  # a logit not used gets None, and its batch no backward
        ctx.save_for_backward(real_features, fake_features, output_weight, tensor, weight)
        return real_logit, fake_logit

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_real, grad_fake):
        real_features, fake_features, output_weight, tensor, weight = ctx.saved_tensors
        (real_arrays, fake_arrays), needs = ctx.arrays, ctx.needs_input_grad
        weight_array = weight.detach().view(-1).numpy() if real_arrays[-1] or fake_arrays[-1] else None
        shared = needs[2:6]  # the generated batch's copy of the weights (the real batch's: needs[6:10], the same)
        weights = output_weight, ctx.flat_t, tensor, weight, weight_array
        real = fake = (None,) * 5  # a batch whose logit was not used: no gradient, as from a node not reached
        if grad_real is not None:
            real = _head_backward(grad_real, real_features, *weights, real_arrays, (needs[0], *shared))
        if grad_fake is not None:
            fake = _head_backward(grad_fake, fake_features, *weights, fake_arrays, (needs[1], *shared))
        return (real[0], fake[0], *fake[1:], *real[1:], None)


def _closeness_and_others(m: torch.Tensor, divisor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tensor formula (CUDA, or no numba): c_b(i, j) as (B, n, n) and o / divisor as (n, B)."""
    distances = (m[:, 0, :, None] - m[:, 0, None, :]).abs_()  # (B, n, n)
    scratch = torch.empty_like(distances)
    for c in range(1, m.shape[1]):  # L1 over C, in the order of C
        distances += torch.sub(m[:, c, :, None], m[:, c, None, :], out=scratch).abs_()
    closeness = distances.neg_().exp_()  # c_b(i, j); the diagonal is exactly exp(0) = 1
    # Summing over j includes j = i, which adds exactly 1: subtract it (self excluded).
    others = closeness.sum(dim=2).sub_(1.0).t()
    return closeness, (others / divisor if divisor != 1 else others)


def _grad_m(m: torch.Tensor, closeness: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The tensor formula of d loss / d M as (B, C, n), for grad = d loss / d o as (n, B), divided."""
    grad = grad.t()  # (B, n)
    weight = (grad[:, :, None] + grad[:, None, :]).mul_(closeness)  # (g_i + g_j) c_b(i, j): (B, n, n)
    grad_m = torch.empty_like(m)  # (B, C, n)
    scratch = torch.empty_like(closeness)
    for c in range(m.shape[1]):
        torch.sub(m[:, c, :, None], m[:, c, None, :], out=scratch).sign_().mul_(weight)
        torch.sum(scratch, dim=2, out=grad_m[:, c])
    return grad_m.neg_()


class MinibatchDiscrimination(nn.Module):
    """(n, A) -> (n, A + B): the input features with the minibatch features appended."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int, *, reduction: str = "sum",
                 init_std: float = 0.05):
        super().__init__()
        _is_mean(reduction)  # refuses an unknown one now, not at the first batch
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.reduction = reduction
        # The official code draws theta ~ N(0, 0.05) before weight norm; a small scale keeps
        # the first distances around 1, where exp(-d) still has a useful gradient.
        self.tensor = nn.Parameter(torch.randn(in_features, kernels, kernel_dim) * init_std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, minibatch_features(features, self.tensor, self.reduction)], dim=1)

    def extra_repr(self) -> str:
        return f"A={self.in_features}, B={self.kernels}, C={self.kernel_dim}, reduction={self.reduction}"
