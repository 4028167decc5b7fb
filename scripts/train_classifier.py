"""Train the small CNN that judges generated images, and save it into checkpoints/.

    python scripts/train_classifier.py --data digits        # a few seconds on a CPU
    python scripts/train_classifier.py --data mnist         # needs the MNIST files

It trains on the train split only, with a fixed seed and a fixed number of epochs (no
early stopping on the test split, so the test accuracy is an honest held-out number),
with light augmentation (random shifts of up to 1 pixel for 8x8 digits, 2 for 28x28).
The test-split accuracy goes into the file's metadata, which the app shows beside every
image metric. The file is written atomically: a temporary file, then a rename.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ganapp.classifier import IMAGE_SIZES, Classifier, classifier_path, default_architecture, save_classifier  # noqa: E402
from ganapp.data import load_dataset  # noqa: E402

EPOCHS = {"digits": 60, "mnist": 6, "fashion-mnist": 10}
MAX_SHIFT = {"digits": 1, "mnist": 2, "fashion-mnist": 2}


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image (n, C, S, S) by up to max_shift pixels in x and y, filling with -1 (background)."""
    n, _, size, _ = images.shape
    padded = F.pad(images, [max_shift] * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    rows = offsets[:, 0, None] + torch.arange(size)  # (n, S)
    cols = offsets[:, 1, None] + torch.arange(size)
    batch = torch.arange(n)[:, None, None]
    # (n, S, S, C) gathered by advanced indexing, then back to (n, C, S, S)
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, probabilities = model.features_and_probabilities(images)
    return float((probabilities.argmax(1) == labels).float().mean())


def train(data_name: str, *, epochs: int, seed: int, batch_size: int = 64, lr: float = 1e-3,
          log=print) -> tuple[Classifier, float, dict]:
    torch.manual_seed(seed)
    train_set, test_set = load_dataset(data_name, split="train"), load_dataset(data_name, split="test")
    model = Classifier(**default_architecture(data_name))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    images, labels = train_set.data, train_set.labels
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            x = random_shift(images[batch], MAX_SHIFT[data_name], generator)
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        scheduler.step()
        if epoch == 1 or epoch % max(1, epochs // 6) == 0 or epoch == epochs:
            log(f"epoch {epoch}/{epochs}: train loss {total / len(images):.4f}, "
                f"train accuracy {accuracy(model, images, labels):.4f}")
    test_accuracy = accuracy(model, test_set.data, test_set.labels)
    info = {"train_size": len(train_set), "test_size": len(test_set), "epochs": epochs, "seed": seed,
            "batch_size": batch_size, "lr": lr, "max_shift": MAX_SHIFT[data_name],
            "train_seconds": round(time.perf_counter() - started, 1), "trained_by": "scripts/train_classifier.py"}
    return model.eval(), test_accuracy, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, choices=sorted(IMAGE_SIZES))
    parser.add_argument("--epochs", type=int, default=None, help="default: 60 digits, 6 mnist, 10 fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", default=None, help="file to write (default checkpoints/classifier-DATA.safetensors)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = args.epochs or EPOCHS[args.data]
    model, test_accuracy, info = train(args.data, epochs=epochs, seed=args.seed)
    path = save_classifier(model, args.out or classifier_path(args.data), data_name=args.data,
                           test_accuracy=test_accuracy, extra=info)
    print(f"held-out test accuracy {test_accuracy:.4f} on {info['test_size']} {args.data} images; "
          f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
