"""The adversarial losses, with one-sided label smoothing (Salimans et al. 2016, section 3.4).

With targets alpha (real) and beta (fake) the optimal D is
(alpha p_data + beta p_model) / (p_data + p_model): a beta > 0 would keep rewarding fakes
far from the data, so only the real target is smoothed and the fake target stays exactly
0 (techniques.md, section 4; ganhacks' two-sided smoothing is not what the paper says).
The generator's own target is unchanged by D's alpha.
"""

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """BCE(D(x), alpha) + BCE(D(G(z)), 0); real_target = alpha (1.0 is plain BCE).

    Batch sizes of real and fake may differ: each side builds its own targets.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """Non-saturating -log D(G(z)) (default) or the original minimax log(1 - D(G(z))).

    With logits l, -log sigmoid(l) = softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
    The saturating form has a vanishing gradient when D rejects the fakes confidently,
    which is why the field moved away from it.
    """
    if saturating:
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()
