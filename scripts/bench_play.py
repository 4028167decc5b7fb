"""The play gate's cost per step (ganapp.server.control.Player polling an empty command pipe), beside one
training step, in one process: python scripts/bench_play.py. Prints the share of a step the gate takes."""
import multiprocessing as mp, sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
import torch
from ganapp.config import GANConfig
from ganapp.training import Trainer
from ganapp.server.control import Player
from ganapp.worker import _pipe_receiver

torch.set_num_threads(1)
reader, writer = mp.Pipe(duplex=False)
player = Player(_pipe_receiver(reader), lambda m: None, lambda: False)
t = Trainer(GANConfig(data="ring8", steps=10_000, metrics_every=0))
for _ in range(50):
    t.train_step()
for round_ in range(3):
    n = 20000
    start = time.perf_counter(); [player.gate(t) for _ in range(n)]; gate = (time.perf_counter() - start) / n
    m = 300
    start = time.perf_counter(); [t.train_step() for _ in range(m)]; step = (time.perf_counter() - start) / m
    print(f"round {round_}: gate {gate * 1e6:.1f} us per step, a training step {step * 1e6:.0f} us (ring8, default model): "
          f"{100 * gate / step:.2f}% of a step", flush=True)
