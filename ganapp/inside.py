"""See inside the game: the numbers behind D's view, G's push and one lens per technique.

Pure torch maths over a run's own models; ganapp.render_inside draws them. Every view
reuses the layers and losses the training step uses (the discriminator's body, output
and minibatch tensor; ganapp.techniques' losses), so what the page shows is what
training computes, not a re-implementation of it:

- `heatmap`: D(x) = sigmoid(logit) on a grid over the plotted box. With minibatch
  discrimination D's output depends on the batch, so a grid point is scored as one more
  member of a given generated batch: o(x) compares it with that batch (as D would if x
  were appended to it, self excluded).
- `push`: minus the gradient of G's current loss (non-saturating, saturating or feature
  matching, with minibatch features when they are on) with respect to each generated
  point of a batch: the direction in which the G step moves each point.
- lenses: `closeness` (minibatch discrimination's c_b(i, j)), `vbn_demo` (the same noise
  in two batches through BN and through VBN), `real_histogram` (D(x) on real data, for
  one-sided label smoothing), `feature_means` (feature matching's two means).

Nothing here changes a run: no optimizer step, no parameter .grad, no draw from the
trainer's random streams (the views keep their own seeded generator).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .models import Discriminator, Generator
from .techniques import feature_matching_loss, generator_loss, minibatch_features

HEATMAP_RESOLUTION = 64  # grid cells per side (the issue asks for at least 64 x 64)
HISTOGRAM_BINS = 20


def grid_points(limits: tuple[float, float, float, float], resolution: int = HEATMAP_RESOLUTION) -> torch.Tensor:
    """Cell centres of a resolution x resolution grid over (xmin, xmax, ymin, ymax), (r*r, 2).

    Row-major from the top-left: row i has y = ymax - (i + 0.5) h, column j x = xmin + (j + 0.5) w,
    so reshaping the values to (r, r) gives a picture the right way up.
    """
    xmin, xmax, ymin, ymax = (float(v) for v in limits)
    if resolution < 1 or not (xmax > xmin and ymax > ymin):
        raise ValueError(f"need resolution >= 1 and limits with min < max; got {resolution}, {limits}")
    xs = xmin + (torch.arange(resolution, dtype=torch.float64) + 0.5) * (xmax - xmin) / resolution
    ys = ymax - (torch.arange(resolution, dtype=torch.float64) + 0.5) * (ymax - ymin) / resolution
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1).float()


def closeness(features_a: torch.Tensor, features_b: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """c_b(i, j) = exp(-||M_a,i,b - M_b,j,b||_1) with M = f T: shape (B, n_a, n_b).

    The minibatch layer's own matrix for features_a = features_b (its diagonal is exactly 1,
    the self term the layer leaves out); across two sets, how close each row of a is to each
    row of b. T is the layer's tensor (A, B, C).
    """
    in_features, kernels, kernel_dim = tensor.shape
    flat = tensor.reshape(in_features, kernels * kernel_dim)
    m_a = (features_a @ flat).view(-1, kernels, kernel_dim).permute(2, 1, 0).contiguous()  # (C, B, n_a)
    m_b = (features_b @ flat).view(-1, kernels, kernel_dim).permute(2, 1, 0).contiguous()  # (C, B, n_b)
    # L1 over C one kernel dimension at a time, as the layer does: (B, n_a, n_b) temporaries only
    # (faster than torch.cdist(p=1) here, and a 64 x 64 grid against a batch is 4096 x n rows).
    distances = (m_a[0, :, :, None] - m_b[0, :, None, :]).abs()
    for c in range(1, kernel_dim):
        distances = distances + (m_a[c, :, :, None] - m_b[c, :, None, :]).abs()
    return torch.exp(-distances)


def _others_against(features: torch.Tensor, batch_features: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """sum over the batch of c_b(i, j), (n, B): on the CPU by minibatch discrimination's
    compiled loops (no gradient; the heatmap's 4,096 points: 8 ms against 34 ms), else as tensors."""
    from .techniques import minibatch_kernel
    from .techniques.minibatch_discrimination import transposed_m

    if (not torch.is_grad_enabled() and minibatch_kernel.usable(features)
            and features.dtype == batch_features.dtype == tensor.dtype):
        m_points, m_batch = transposed_m(features, tensor), transposed_m(batch_features, tensor)  # (B, C, n)
        return torch.from_numpy(minibatch_kernel.cross(m_points.numpy(), m_batch.numpy()))
    return closeness(features, batch_features, tensor).sum(dim=2).t()


def view_logits(discriminator: Discriminator, points: torch.Tensor, batch: torch.Tensor | None = None,
                chunk: int = 1024) -> torch.Tensor:
    """D's logit for each of `points` (n,), each scored on its own.

    Without minibatch discrimination this is D(points). With it, each point is scored as if
    it were appended to `batch` (its o(x) compares it with the batch's rows; reduction
    "mean" divides by the batch size, the number of others it would have): exactly the last
    row of D(cat[batch, x]), without building n batches.
    """
    outputs = []
    layer = discriminator.minibatch
    if layer is not None:
        if batch is None or batch.shape[0] == 0:
            raise ValueError("with minibatch discrimination a point is scored against a batch; none given")
        batch_features = discriminator.body(batch)  # once for every chunk
    for start in range(0, points.shape[0], chunk):
        x = points[start:start + chunk]
        features = discriminator.body(x)
        logit = discriminator.output(features)
        if layer is not None:
            others = _others_against(features, batch_features, layer.tensor)  # (n, B)
            if layer.reduction == "mean":
                others = others / batch.shape[0]
            logit = logit + discriminator.minibatch_output(others)
        outputs.append(logit.squeeze(1))
    return torch.cat(outputs) if outputs else torch.zeros(0)


@torch.no_grad()
def heatmap(discriminator: Discriminator, limits: tuple[float, float, float, float], *,
            batch: torch.Tensor | None = None, resolution: int = HEATMAP_RESOLUTION) -> np.ndarray:
    """D(x) in [0, 1] on the grid of `grid_points`, as a (resolution, resolution) float array."""
    device = next(discriminator.parameters()).device
    points = grid_points(limits, resolution).to(device)
    values = torch.sigmoid(view_logits(discriminator, points, batch.to(device) if batch is not None else None))
    return values.reshape(resolution, resolution).float().cpu().numpy()


def generator_loss_of_points(discriminator: Discriminator, points: torch.Tensor, *, feature_matching: bool,
                             saturating: bool, real_batch: torch.Tensor | None = None) -> torch.Tensor:
    """G's loss as the training step computes it, as a function of the generated batch `points`.

    D sees the whole batch in one call (so minibatch features couple the points, as in
    training); feature matching compares its features with those of `real_batch`.
    Historical averaging adds a penalty on G's weights only: no gradient reaches the points.
    """
    logits, features = discriminator(points)
    if feature_matching:
        if real_batch is None:
            raise ValueError("feature matching needs a real batch to match")
        with torch.no_grad():
            _, real_features = discriminator(real_batch)
        return feature_matching_loss(real_features, features)
    return generator_loss(logits, saturating=saturating)


def push(discriminator: Discriminator, points: torch.Tensor, *, feature_matching: bool, saturating: bool,
         real_batch: torch.Tensor | None = None) -> np.ndarray:
    """Minus the gradient of G's loss with respect to each generated point: (n, 2) numpy.

    torch.autograd.grad leaves every parameter's .grad untouched.
    """
    x = points.detach().clone().requires_grad_(True)
    loss = generator_loss_of_points(discriminator, x, feature_matching=feature_matching, saturating=saturating,
                                    real_batch=real_batch)
    (gradient,) = torch.autograd.grad(loss, x)
    return (-gradient).float().cpu().numpy()


@torch.no_grad()
def closeness_lens(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> dict[str, np.ndarray]:
    """Minibatch discrimination's lens: sum over kernels of c_b(i, j) for a real and a generated
    batch, (n, n) each (the diagonal is B), and o(x) summed over kernels per sample, from the
    layer itself (its reduction, self excluded)."""
    layer = discriminator.minibatch
    if layer is None:
        raise ValueError("this discriminator has no minibatch layer")
    out = {}
    for name, batch in (("real", real), ("fake", fake)):
        features = discriminator.body(batch)
        out[f"{name}_matrix"] = closeness(features, features, layer.tensor).sum(dim=0).cpu().numpy()
        out[f"{name}_o"] = minibatch_features(features, layer.tensor, layer.reduction).sum(dim=1).cpu().numpy()
    out["kernels"] = np.array(layer.kernels)
    return out


def batch_norm_twin(generator: Generator) -> Generator:
    """A generator with the same weights, ordinary batch norm (batch statistics) in place of VBN.

    VBN's gamma and beta become the batch norm's; the copy is in training mode, so each
    output is normalised with its own batch's statistics. The run's generator is untouched.
    """
    conv = [isinstance(layer, nn.ConvTranspose2d) or (isinstance(layer, nn.Sequential) and
                                                        any(type(m).__name__ == "Reshape" for m in layer))
            for layer in generator.layers]
    norm_features = [norm.num_features for norm in generator.norms]
    twin = Generator(layers=[copy.deepcopy(layer) for layer in generator.layers], norm_features=norm_features,
                     conv_norms=conv, output=copy.deepcopy(generator.output), virtual_batch_norm=False,
                     reference_noise=None, batch_norm=True)
    for norm, source in zip(twin.norms, generator.norms):
        norm.weight.data.copy_(source.weight.data)
        norm.bias.data.copy_(source.bias.data)
    device = next(generator.parameters()).device
    return twin.to(device).train()


@torch.no_grad()
def vbn_demo(generator: Generator, noise: torch.Tensor, mates_a: torch.Tensor, mates_b: torch.Tensor) -> dict:
    """The same noise vectors `noise` (k, d) placed among two different sets of batch-mates,
    drawn through the run's generator (VBN) and through its batch-norm twin.

    Returns the outputs of the k vectors in each batch, (k, ...) numpy, and the largest
    change between the two batches for each: BN's moves with the batch-mates, VBN's not.
    """
    if not generator.virtual_batch_norm:
        raise ValueError("the VBN demonstration needs a generator with virtual batch norm")
    k = noise.shape[0]
    twin = batch_norm_twin(generator)
    out: dict = {}
    for name, network in (("bn", twin), ("vbn", generator)):
        first = network(torch.cat([noise, mates_a]))[:k]
        second = network(torch.cat([noise, mates_b]))[:k]
        out[f"{name}_a"], out[f"{name}_b"] = first.cpu().numpy(), second.cpu().numpy()
        out[f"{name}_shift"] = float((first - second).abs().max())
    return out


@torch.no_grad()
def batched_real_probabilities(discriminator: Discriminator, real: torch.Tensor, batch_size: int) -> np.ndarray:
    """D(x) = sigmoid(logit) on real data, in batches of the training batch size (minibatch
    features then compare each real point with batch-mates, as in a D step)."""
    values = [torch.sigmoid(discriminator(real[start:start + batch_size])[0])
              for start in range(0, real.shape[0], batch_size)]
    return torch.cat(values).cpu().numpy()


def real_histogram(probabilities: np.ndarray, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts of D(x) values in `bins` equal bins over [0, 1] (1.0 in the last): (counts, edges)."""
    return np.histogram(np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0), bins=bins, range=(0.0, 1.0))


@torch.no_grad()
def feature_means(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> dict:
    """Feature matching's lens: the mean of D's features (the layer FM matches) on real and on
    generated data, and feature matching's loss between them (the squared distance)."""
    _, real_features = discriminator(real)
    _, fake_features = discriminator(fake)
    return {"real": real_features.flatten(1).mean(dim=0).cpu().numpy(),
            "fake": fake_features.flatten(1).mean(dim=0).cpu().numpy(),
            "distance": float(feature_matching_loss(real_features, fake_features))}
