"""Where minibatch discrimination's time goes inside the 2-D MLP's training step.

`python -m ganapp bench` gives the cost as one ratio (MBD's step against vanilla's). This
script takes the MBD step apart: it times, inside real training steps on ring8, the
minibatch node's forward and backward, the compiled loops in each, the product f T, the two
products of T's gradients, and each optimizer's step, with a vanilla run interleaved round by
round (so a busy machine slows both alike), and prints microseconds per training step (three
D calls a step: the real and the generated batch in D's step, in one node, the generated one
in G's). It also times an empty custom autograd Function with the node's inputs: the floor of
any node whose backward is written in Python.

    python scripts/bench_minibatch_parts.py [--rounds 60] [--steps 8]

The timers wrap functions (about a microsecond each, some twenty a step), so the parts add
up to a little more than they cost; the ratio line is measured without them, in the same
rounds. Used for README.md, "Speed" (2 December 2026).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp.bench import median_cost  # noqa: E402
from ganapp.config import GANConfig  # noqa: E402
from ganapp.techniques import minibatch_discrimination as node  # noqa: E402
from ganapp.techniques import minibatch_kernel as kernel  # noqa: E402
from ganapp.training import Trainer  # noqa: E402


class Timers:
    """Seconds spent in wrapped callables, by name, while `on`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.on = False

    def wrap(self, owner, name: str, label: str, *, static: bool = False) -> None:
        function = getattr(owner, name)

        def timed(*args, **kwargs):
            if not self.on:
                return function(*args, **kwargs)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, staticmethod(timed) if static else timed)


class _Empty(torch.autograd.Function):
    """The node's inputs in, a logit-shaped tensor out, nothing computed either way."""

    @staticmethod
    def forward(ctx, features, output_weight, output_bias, tensor, weight, mean):
        ctx.save_for_backward(features, output_weight, tensor, weight)
        return features.new_zeros(features.shape[0])

    @staticmethod
    def backward(ctx, grad):
        ctx.saved_tensors
        return None, None, None, None, None, None


def empty_node_microseconds(rounds: int = 60, calls: int = 300) -> float:
    """What an empty autograd Function adds to a graph, forward and backward, per call, at
    ring8's sizes: a linear layer's forward and backward with and without the empty node
    added to its output, interleaved (the median of the rounds' differences; the addition
    itself is in it, a few microseconds)."""
    inputs = [torch.randn(64, 128, requires_grad=True), torch.randn(1, 128, requires_grad=True),
              torch.randn(1, requires_grad=True), torch.randn(128, 16, 5, requires_grad=True),
              torch.randn(1, 16, requires_grad=True)]
    features, weight, upstream = torch.randn(64, 128, requires_grad=True), torch.randn(1, 128, requires_grad=True), \
        torch.ones(64)

    def alone() -> None:
        torch.nn.functional.linear(features, weight).squeeze(1).backward(upstream)

    def with_empty() -> None:
        (torch.nn.functional.linear(features, weight).squeeze(1) + _Empty.apply(*inputs, True)).backward(upstream)

    def per_call(run) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            run()
        return (time.perf_counter() - started) / calls * 1e6

    for _ in range(200):
        alone()
        with_empty()
    return statistics.median(per_call(with_empty) - per_call(alone) for _ in range(rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (default 60)")
    parser.add_argument("--steps", type=int, default=8, help="training steps a round (default 8)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10_000 or not 1 <= args.steps <= 1_000:
        parser.error("--rounds must be 1-10000 and --steps 1-1000")
    torch.set_num_threads(1)

    vanilla = Trainer(GANConfig(data="ring8"))
    mbd = Trainer(GANConfig(data="ring8", minibatch_discrimination=True))
    timers = {"vanilla": Timers(), "mbd": Timers()}
    for name, trainer in (("vanilla", vanilla), ("mbd", mbd)):
        timers[name].wrap(trainer.discriminator_optimizer, "step", "Adam, D")
        timers[name].wrap(trainer.generator_optimizer, "step", "Adam, G")
    parts = timers["mbd"]
    for function in (node._MinibatchHead, node._MinibatchHeadPair):  # G's step's node, D's step's
        parts.wrap(function, "forward", "node forward", static=True)
        parts.wrap(function, "backward", "node backward", static=True)
    parts.wrap(kernel, "forward", "  loops, forward")
    parts.wrap(kernel, "logit_backward", "  loops, backward")
    parts.wrap(node, "_m_product", "  product f T")
    parts.wrap(node, "_head_products", "  products of the gradients")

    for trainer in (vanilla, mbd):
        for _ in range(30):
            trainer.train_step()
    plain: dict[str, list[float]] = {"vanilla": [], "mbd": []}
    timed_steps = {"vanilla": 0, "mbd": 0}
    for round_index in range(args.rounds):
        order = [("vanilla", vanilla), ("mbd", mbd)]
        for name, trainer in (order if round_index % 2 == 0 else order[::-1]):
            started = time.perf_counter()  # untimed: the ratio
            for _ in range(args.steps):
                trainer.train_step()
            plain[name].append((time.perf_counter() - started) / args.steps)
            timers[name].on = True  # timed: the parts
            for _ in range(args.steps):
                trainer.train_step()
            timers[name].on = False
            timed_steps[name] += args.steps

    ratios = sorted(m / v for m, v in zip(plain["mbd"], plain["vanilla"]))
    print(f"ring8, {args.rounds} interleaved rounds of {args.steps} steps, torch {torch.__version__}, "
          f"compiled loops {'on' if kernel.ENABLED else 'off'}")
    print(f"step: vanilla {statistics.median(plain['vanilla']) * 1e6:,.0f} us, minibatch discrimination "
          f"{statistics.median(plain['mbd']) * 1e6:,.0f} us (medians); minibatch / vanilla "
          f"{median_cost(plain['mbd'], plain['vanilla']):.2f}x (median of the rounds' ratios, as the bench; middle half "
          f"{ratios[len(ratios) // 4]:.2f}x-{ratios[(3 * len(ratios)) // 4]:.2f}x)")
    print("\nmicroseconds per training step, minibatch discrimination run (vanilla's where it has the part):")
    order = ["node forward", "  loops, forward", "  product f T", "node backward", "  loops, backward",
             "  products of the gradients", "Adam, D", "Adam, G"]
    for label in order:
        seconds = parts.seconds.get(label, 0.0)
        theirs = timers["vanilla"].seconds.get(label)
        also = f"   vanilla {theirs / timed_steps['vanilla'] * 1e6:>7,.0f}" if theirs is not None else ""
        print(f"  {label:<32}{seconds / timed_steps['mbd'] * 1e6:>7,.0f}{also}")
    print(f"\nan empty autograd Function with the node's five tensor inputs, added to a graph, forward and "
          f"backward: {empty_node_microseconds():.0f} us a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
