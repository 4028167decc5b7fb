"""Virtual batch normalization, Salimans et al. (2016), section 3.5.

Batch norm makes each generated example depend on its batch-mates. VBN normalises each
example with the statistics of a *reference batch fixed at the start* plus the example
itself, so an example's output no longer depends on the rest of its batch. Decisions
(techniques.md, section 5), following the official code after its 2017 fix and TF-GAN:
 - the fixed thing is the reference *noise* z_ref, kept by the generator as a buffer;
   every step the reference batch runs through the current G, and gradients pass through
   the reference statistics, as in the official code;
 - reference path: plain batch norm of the reference batch (per channel, biased variance);
 - live path: per channel, the example's own mean and mean-square (over its spatial
   positions) mixed with the reference's at weights 1/(N+1) and N/(N+1);
 - var = meansq - mean^2; y = gamma (x - mu) / sqrt(var + eps) + beta.
The maths are pure functions of their inputs: nothing depends on the order of calls
(torchgan's VBN, which stores the reference on its first call, is what we must not do).
"""

import torch
from torch import nn


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Spatial dims of (n, C) or (n, C, H, W) tensors: () or (2, 3)."""
    return tuple(range(2, x.dim()))


def _per_channel(stat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcast a (n or 1, C) statistic against x of shape (n, C, ...)."""
    return stat.view(*stat.shape, *([1] * (x.dim() - 2)))


def reference_statistics(reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and mean-square of the reference batch over (batch, spatial): (C,), (C,)."""
    dims = (0, *_reduce_dims(reference))
    return reference.mean(dim=dims), reference.pow(2).mean(dim=dims)


def _normalize(x, mean, meansq, weight, bias, eps):
    variance = (meansq - mean.pow(2)).clamp_min(0.0)  # biased; clamp guards rounding below 0
    y = (x - _per_channel(mean, x)) * torch.rsqrt(_per_channel(variance, x) + eps)
    return y * _per_channel(weight.unsqueeze(0), x) + _per_channel(bias.unsqueeze(0), x)


def virtual_batch_norm(x: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise the live batch x with the reference batch; returns (live output, reference output).

    x: (n, C) or (n, C, H, W); reference: (N, C) or (N, C, H, W) with the same C.
    """
    ref_mean, ref_meansq = reference_statistics(reference)  # (C,), (C,)
    reference_out = _normalize(reference, ref_mean.unsqueeze(0), ref_meansq.unsqueeze(0), weight, bias, eps)

    n_ref = reference.shape[0]
    dims = _reduce_dims(x)
    own_mean = x.mean(dim=dims) if dims else x  # (n, C): the example's own statistics only
    own_meansq = x.pow(2).mean(dim=dims) if dims else x.pow(2)
    new_coeff, old_coeff = 1.0 / (n_ref + 1.0), n_ref / (n_ref + 1.0)
    mean = new_coeff * own_mean + old_coeff * ref_mean  # (n, C)
    meansq = new_coeff * own_meansq + old_coeff * ref_meansq
    return _normalize(x, mean, meansq, weight, bias, eps), reference_out


class VirtualBatchNorm(nn.Module):
    """VBN layer for (n, C) or (n, C, H, W) inputs; gamma = 1 and beta = 0 at the start.

    forward(x, reference) -> (x normalised, reference normalised). The generator carries
    the reference activations alongside the live ones from layer to layer.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return virtual_batch_norm(x, reference, self.weight, self.bias, self.eps)
