"""A small CNN classifier per image data set, the judge behind the image metrics.

Salimans et al. (2016, section 4) score samples with an ImageNet Inception network; for
8x8 digits and 28x28 MNIST that network is meaningless, so ganapp trains a small CNN on
each data set instead (techniques.md, "Decisions for ganapp"): its class probabilities
give the classifier score and the classes covered, its penultimate layer the feature
space of the Frechet distance. Numbers from it are only comparable with numbers from the
same classifier, which is why every image metric is shown beside real held-out data.

A trained classifier ships as ``checkpoints/classifier-<data>.safetensors``: weights in
safetensors, and in the metadata (JSON) the data set, the architecture and the accuracy
on the held-out test split. ``scripts/train_classifier.py`` writes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .checkpoint import CheckpointError, read_header

FORMAT = "ganapp-classifier"
FORMAT_VERSION = 1
CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
IMAGE_SIZES = {"digits": 8, "mnist": 28, "fashion-mnist": 28}

# Class names shown under the bars of the class histogram.
CLASS_NAMES = {
    "digits": [str(k) for k in range(10)],
    "mnist": [str(k) for k in range(10)],
    "fashion-mnist": ["top", "trouser", "pullover", "dress", "coat",
                      "sandal", "shirt", "sneaker", "bag", "boot"],
}


class ClassifierError(CheckpointError):
    """A classifier file exists but cannot be used; the message says why and what to do."""


def default_architecture(data_name: str) -> dict[str, Any]:
    """The architecture used for a data set: one conv stage per halving of the image
    (8 -> 4 -> 2 for digits, 28 -> 14 -> 7 -> 3 for MNIST), then a 64-unit feature layer."""
    if data_name not in IMAGE_SIZES:
        raise ValueError(f"no classifier for data set {data_name!r}; image sets are {', '.join(IMAGE_SIZES)}")
    size = IMAGE_SIZES[data_name]
    channels = [32, 64] if size <= 8 else [32, 64, 64]
    return {"name": "ganapp-cnn", "image_size": size, "in_channels": 1, "channels": channels,
            "feature_dim": 64, "num_classes": 10}


class Classifier(nn.Module):
    """x (n, in_channels, S, S) in [-1, 1] -> logits (n, num_classes).

    Each stage is conv3x3-ReLU-conv3x3-ReLU-maxpool2; then a linear layer to
    ``feature_dim`` units with ReLU (``features``, the Frechet space, post-ReLU as
    Inception's pool3 features are) and a linear output layer.
    """

    def __init__(self, *, image_size: int, in_channels: int = 1, channels: list[int] | tuple[int, ...] = (16, 32),
                 feature_dim: int = 64, num_classes: int = 10, name: str = "ganapp-cnn"):
        super().__init__()
        self.architecture = {"name": name, "image_size": image_size, "in_channels": in_channels,
                             "channels": list(channels), "feature_dim": feature_dim, "num_classes": num_classes}
        stages: list[nn.Module] = []
        size, previous = image_size, in_channels
        for width in channels:
            stages += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            size, previous = size // 2, width
        if size < 1:
            raise ValueError(f"{len(channels)} pooling stages are too many for {image_size}x{image_size} images")
        self.stages = nn.Sequential(*stages)
        self.feature_layer = nn.Linear(previous * size * size, feature_dim)
        self.output = nn.Linear(feature_dim, num_classes)
        self.test_accuracy: float | None = None  # set by load_classifier from the file's metadata
        self.metadata: dict[str, Any] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, feature_dim): the penultimate layer, after its ReLU."""
        h = self.stages(x)  # (n, C, s, s)
        return torch.relu(self.feature_layer(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

    @torch.no_grad()
    def features_and_probabilities(self, images: torch.Tensor, batch_size: int = 500
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (n, feature_dim) and softmax probabilities (n, num_classes) in eval
        mode, in batches so that 60,000 MNIST images do not need one huge activation."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        features, probabilities = [], []
        try:
            for start in range(0, images.shape[0], batch_size):
                h = self.features(images[start:start + batch_size].to(device, torch.float32))
                features.append(h.cpu())
                probabilities.append(torch.softmax(self.output(h), dim=1).cpu())
        finally:
            self.train(was_training)
        return torch.cat(features), torch.cat(probabilities)


def classifier_path(data_name: str, folder: str | os.PathLike | None = None) -> Path:
    return Path(folder if folder is not None else CLASSIFIER_DIR) / f"classifier-{data_name}.safetensors"


def save_classifier(model: Classifier, path: str | os.PathLike, *, data_name: str, test_accuracy: float,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write weights and metadata to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "data": data_name,
            "architecture": model.architecture, "test_accuracy": round(float(test_accuracy), 6), **(extra or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(temporary), metadata={"ganapp": json.dumps(meta)})
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def read_classifier_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a classifier file, read from its header without loading tensors."""
    path = Path(path)
    retrain = "retrain it with: python scripts/train_classifier.py --data <data set>"
    try:
        header = read_header(path)  # refuses pickles, truncated and foreign files, unpickles nothing
    except CheckpointError as error:
        raise ClassifierError(f"cannot use the classifier file {path}: {error}; {retrain}") from None
    raw = (header.get("__metadata__") or {}).get("ganapp")
    try:
        meta = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ClassifierError(f"{path.name} is a safetensors file but not a ganapp classifier; {retrain}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ClassifierError(f"{path.name} has classifier format version {meta.get('format_version')}; "
                              f"this ganapp reads version {FORMAT_VERSION}; {retrain}")
    return meta


def load_classifier(data_name: str, *, folder: str | os.PathLike | None = None,
                    device: torch.device | str | None = None) -> Classifier | None:
    """The shipped classifier for ``data_name`` in eval mode, or None when its file is absent.

    Raises ClassifierError when the file exists but is not a classifier for this data set
    (a pickle, a damaged file, another data set, another architecture).
    """
    path = classifier_path(data_name, folder)
    if not path.is_file():
        return None
    meta = read_classifier_metadata(path)
    retrain = f"retrain it with: python scripts/train_classifier.py --data {data_name}"
    if meta.get("data") != data_name:
        raise ClassifierError(f"{path.name} was trained on {meta.get('data')!r}, not {data_name!r}; {retrain}")
    architecture = meta.get("architecture")
    expected = default_architecture(data_name)
    if not isinstance(architecture, dict) or any(architecture.get(k) != expected[k]
                                                 for k in ("name", "image_size", "in_channels", "num_classes")):
        raise ClassifierError(f"{path.name} describes architecture {architecture}, which does not fit "
                              f"{data_name} ({expected['image_size']}x{expected['image_size']}, "
                              f"{expected['num_classes']} classes); {retrain}")
    try:
        model = Classifier(**architecture)
    except (TypeError, ValueError) as error:
        raise ClassifierError(f"{path.name} has an unusable architecture ({error}); {retrain}") from None
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise ClassifierError(f"{path.name} is damaged ({error}); {retrain}") from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        raise ClassifierError(f"{path.name}: weights do not match its architecture (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}); {retrain}")
    model.load_state_dict(tensors)
    model.test_accuracy = float(meta.get("test_accuracy", float("nan")))
    model.metadata = meta
    return model.to(device or "cpu").eval()
