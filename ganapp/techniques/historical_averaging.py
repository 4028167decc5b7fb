"""Historical averaging, Salimans et al. (2016), section 3.3.

Each player's cost gets ||theta - (1/t) sum_{i=1..t} theta[i]||^2, inspired by fictitious
play: it damps the orbits that plain gradient descent enters in games like min_x max_y xy.
The paper gives no weight; ours is a setting. Decisions (techniques.md, section 3):
 - the average is a running sum S and a count t, kept in named buffers that go into the
   checkpoint; it includes the current parameters (the paper's formula does, so the
   penalty is 0 at step 1 and an average of 0, 0, 0, 10 is 2.5);
 - the average is held constant: no gradient reaches it;
 - `exponential` mode (the reading many tutorials give) keeps avg <- d avg + (1-d) theta
   instead, starting from the first parameters.
The penalty is added to the player's loss by the training step, which owns the optimizer
(torchgan's separate backward and step is what we must not do).
"""

from collections.abc import Iterable

import torch
from torch import nn


class HistoricalAverage(nn.Module):
    """The historical average of one player's parameters and the penalty toward it."""

    def __init__(self, parameters: Iterable[torch.Tensor], *, mode: str = "uniform", weight: float = 1.0,
                 decay: float = 0.99):
        super().__init__()
        if mode not in ("uniform", "exponential"):
            raise ValueError(f"historical averaging mode must be 'uniform' or 'exponential'; got {mode!r}")
        self.parameters_tracked = list(parameters)
        self.mode, self.weight, self.decay = mode, weight, decay
        for i, p in enumerate(self.parameters_tracked):
            # uniform: the running sum S; exponential: the moving average itself
            self.register_buffer(f"average_{i}", torch.zeros_like(p, memory_format=torch.contiguous_format))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def _buffers_list(self) -> list[torch.Tensor]:
        return [getattr(self, f"average_{i}") for i in range(len(self.parameters_tracked))]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the history (call once per step, before penalty)."""
        buffers = self._buffers_list()
        current = [p.detach() for p in self.parameters_tracked]
        if self.mode == "uniform":
            torch._foreach_add_(buffers, current)
        elif int(self.count) == 0:
            torch._foreach_copy_(buffers, current)
        else:
            torch._foreach_lerp_(buffers, current, 1.0 - self.decay)
        self.count += 1

    @torch.no_grad()
    def averages(self) -> list[torch.Tensor]:
        """The current historical average of each parameter (a constant)."""
        buffers = self._buffers_list()
        if self.mode == "uniform":
            return torch._foreach_div(buffers, float(max(int(self.count), 1)))
        return [b.clone() for b in buffers]

    def penalty(self) -> torch.Tensor:
        """weight * sum over parameters of ||theta - average||^2; gradient 2 weight (theta - average)."""
        averages = self.averages()
        total = sum(((p - a).pow(2).sum() for p, a in zip(self.parameters_tracked, averages)),
                    torch.zeros((), device=averages[0].device if averages else None))
        return self.weight * total
