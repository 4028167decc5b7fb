"""Feature matching, Salimans et al. (2016), section 3.1.

The generator stops trying to fool D and instead matches the mean of an intermediate
D layer: ||E_data f(x) - E_z f(G(z))||^2. Decisions (techniques.md, section 1):
batch means first, then the *sum* of squared differences over features. torchgan's
per-sample MSE is wrong: it is non-zero when the means match and depends on row order.
"""

import torch


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """sum_k (mean_i f(x)_ik - mean_j f(G(z))_jk)^2 for features of shape (n, k) and (m, k).

    The real side is detached: the gradient reaches the generator only, and D's
    parameters are left untouched by the generator's step. The batch sizes may differ.
    """
    real_mean = real_features.detach().flatten(1).mean(dim=0)  # (k,)
    fake_mean = fake_features.flatten(1).mean(dim=0)  # (k,)
    return (real_mean - fake_mean).pow(2).sum()
