"""Quality metrics of a generator, computed every so often during training.

2-D Gaussian mixtures (ring8, grid25), the three numbers of VEEGAN (Srivastava et al.
2017, section 5.1) and PacGAN (Lin et al. 2018, section 5.1), on 2,500 samples:

- a sample is *high quality* when it lies within 3 standard deviations of its nearest
  mode's mean (Euclidean distance <= 3 * std);
- a mode is *covered* when it is the nearest mode of at least one high-quality sample;
- ``mode_kl`` is KL(p || uniform) = sum_k p_k log(p_k K), p the histogram of the
  high-quality samples over the K modes (PacGAN's "reverse KL"): 0 when every mode
  gets the same share, log K when all of them sit on one mode.

spiral has no modes: a symmetric nearest-neighbour distance between samples and data.

A drawn set (ganapp.drawn) has no known Gaussian modes either; what it does have is its
strokes, each one mode of equal weight by construction. Its metrics are the same three
numbers with the strokes as the modes (a sample is high quality within 3 ink std of the
nearest stroke's polyline), plus the nearest-neighbour distance, which also sees whether a
long stroke is covered along its whole length.

Image sets are judged by a small CNN trained on the same data (``classifier.py``):

- the classifier score, the Inception Score formula of Salimans et al. (2016, section 4)
  exp(E_x KL(p(y|x) || p(y))) with this classifier in place of Inception;
- the Frechet distance (Heusel et al. 2017) between Gaussians fitted to the
  classifier's penultimate features of the samples and of the real training images;
- classes covered: classes that are the top prediction of at least one sample, the
  mode count of VEEGAN and PacGAN on stacked MNIST, and the class histogram.

Each image number comes with the value for real held-out images (the test split) through
the same classifier, since a score from a small CNN means nothing on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import picture_text, render
from .data import DataError, load_dataset

if TYPE_CHECKING:
    from .training import Trainer

MODE_SAMPLES = 2500  # samples per evaluation on ring8/grid25/spiral (VEEGAN and PacGAN use 2,500)
IMAGE_SAMPLES = 1000  # at most this many per evaluation on image sets (fewer if the test split is smaller)
SPIRAL_REFERENCE_POINTS = 2500  # data points the spiral's nearest-neighbour distance compares with
IMAGE_REFERENCE_MAX = 10_000  # training images whose features define the Frechet reference
HIGH_QUALITY_STDS = 3.0
EVALUATION_SEED_OFFSET = 104_729  # the evaluator's noise stream, apart from the trainer's seed + 1, 2, 3
LOW_SHARE = 0.25  # a bar below this fraction of an even share is drawn in the warning colour
COLLAPSE_FRACTION = 0.5  # warn when fewer than this fraction of the modes or classes are covered


# ------------------------------------------------------------------------------ 2-D sets


def nearest_mode(samples: np.ndarray, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each sample's nearest mode (n,) and the Euclidean distance to it (n,)."""
    samples, modes = np.asarray(samples, np.float64), np.asarray(modes, np.float64)
    squared = ((samples[:, None, :] - modes[None, :, :]) ** 2).sum(axis=2)  # (n, K); K <= 25
    index = squared.argmin(axis=1)
    return index, np.sqrt(squared[np.arange(len(samples)), index])


def mode_metrics(samples: np.ndarray, modes: np.ndarray, std: float) -> dict[str, Any]:
    """Modes covered, % high-quality samples, KL of the mode histogram from uniform, and
    the histogram itself, as defined in VEEGAN and PacGAN (see the module docstring).

    ``mode_kl`` uses 0 log 0 = 0, so empty modes add nothing and the value stays finite;
    an uneven spread over the covered modes and missing modes both raise it. With no
    high-quality sample at all there is no histogram; we then report log K, the value of
    total collapse, so a curve keeps a point at its worst value instead of a gap.
    """
    samples, modes = np.asarray(samples, np.float64), np.asarray(modes, np.float64)
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples must be (n, {modes.shape[1]}), got {samples.shape}")
    if len(samples) == 0:
        raise ValueError("mode_metrics needs at least one sample")
    k = len(modes)
    index, distance = nearest_mode(samples, modes)
    good = distance <= HIGH_QUALITY_STDS * std
    counts = np.bincount(index[good], minlength=k)
    return {
        "modes_covered": int((counts > 0).sum()),
        "high_quality": round(100.0 * float(good.mean()), 6),  # no 7.199999999999999 in metrics.csv
        "mode_kl": kl_from_uniform(counts),
        "mode_counts": [int(c) for c in counts],
    }


def kl_from_uniform(counts) -> float:
    """KL(p || uniform) = sum_k p_k log(p_k K) of a histogram, with 0 log 0 = 0; log K if it is empty."""
    counts = np.asarray(counts, np.float64)
    k, total = len(counts), counts.sum()
    if total <= 0:
        return math.log(k)
    p = counts[counts > 0] / total
    return float(max(0.0, (p * np.log(p * k)).sum()))


def nearest_neighbour_distance(samples: np.ndarray, data: np.ndarray, *, chunk: int = 1024) -> float:
    """Symmetric nearest-neighbour distance: the mean over samples of the distance to the
    nearest data point, plus the mean over data points of the distance to the nearest
    sample, halved. The first half falls when samples lie on the data, the second when
    they cover all of it; both reach about the data's own spacing for a perfect fit.

    The distance matrix is built ``chunk`` rows at a time, so memory stays at chunk x m.
    """
    a = torch.as_tensor(np.asarray(samples, np.float32))
    b = torch.as_tensor(np.asarray(data, np.float32))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"need two non-empty (n, d) arrays of the same d, got {tuple(a.shape)} and {tuple(b.shape)}")
    a_to_b = torch.empty(len(a))
    b_to_a = torch.full((len(b),), float("inf"))
    for start in range(0, len(a), chunk):
        # Exact differences rather than the |a|^2 + |b|^2 - 2ab shortcut: for 2-D points it
        # is faster, and a point's distance to itself stays exactly 0.
        d = torch.cdist(a[start:start + chunk], b, compute_mode="donot_use_mm_for_euclid_dist")  # (chunk, m)
        a_to_b[start:start + chunk] = d.min(dim=1).values
        b_to_a = torch.minimum(b_to_a, d.min(dim=0).values)
    return float(0.5 * (a_to_b.mean() + b_to_a.mean()))


# ------------------------------------------------------------------------------ image sets


def classifier_score(probabilities: np.ndarray, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) || p(y))), the Inception Score formula (Salimans et al. 2016,
    section 4), of class probabilities (n, K); p(y) is the mean over the samples.

    Computed as exp(H(p(y)) - mean_x H(p(y|x))), the mutual information between the
    sample and its label, in float64 with 0 log 0 = 0. It lies in [1, K]: K for
    confident predictions spread evenly over K classes, 1 when every sample gets the
    same prediction. With ``splits`` > 1, p(y) is computed per split and the mean of
    the split scores is returned, as the official code does (it uses 10 splits).
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"probabilities must be (n, K), got shape {p.shape}")
    if not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be between 1 and the number of samples ({p.shape[0]}); got {splits}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must be >= 0 and sum to 1 (apply softmax first)")
    log_k = math.log(p.shape[1])
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0)
        information = _entropy(marginal[None])[0] - _entropy(part).mean()
        # Mutual information lies in [0, log K]; clip only floating-point round-off.
        scores.append(math.exp(min(max(information, 0.0), log_k)))
    return float(np.mean(scores))


def _entropy(p: np.ndarray) -> np.ndarray:
    """Row entropies of (n, K) probabilities, with 0 log 0 = 0."""
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features (n, d), in float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (n, d) with n >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance_from_stats(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """Frechet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b):
    ||mu_a - mu_b||^2 + tr(sigma_a) + tr(sigma_b) - 2 tr sqrt(sigma_a sigma_b).

    sigma_a sigma_b is not symmetric, but it is similar to the symmetric PSD matrix
    M = sqrt(sigma_a) sigma_b sqrt(sigma_a), so tr sqrt(sigma_a sigma_b) is the sum of the
    square roots of M's eigenvalues. Two symmetric eigen-decompositions (no scipy sqrtm,
    no complex round-off); eigenvalues below zero by round-off are clipped to zero.
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (len(mu_a), len(mu_a)):
        raise ValueError(f"shapes do not fit: mu {mu_a.shape} and {mu_b.shape}, sigma {sigma_a.shape} and {sigma_b.shape}")
    sqrt_a = _sqrt_psd(sigma_a)
    middle = sqrt_a @ sigma_b @ sqrt_a
    eigenvalues = np.linalg.eigvalsh(0.5 * (middle + middle.T))  # symmetrise away round-off
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix, via eigh."""
    eigenvalues, vectors = np.linalg.eigh(0.5 * (sigma + sigma.T))
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n_a, d) and (n_b, d)."""
    return frechet_distance_from_stats(*feature_statistics(features_a), *feature_statistics(features_b))


def class_histogram(probabilities: np.ndarray) -> np.ndarray:
    """How many samples have each class as their top prediction: int counts (K,)."""
    p = np.asarray(probabilities)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (n, K), got shape {p.shape}")
    return np.bincount(p.argmax(axis=1), minlength=p.shape[1])


def coverage_warning(covered: int, total: int, what: str) -> str | None:
    """A sentence when fewer than half of the modes (or classes) are covered, else None."""
    if covered >= COLLAPSE_FRACTION * total:
        return None
    return f"Mode collapse: only {covered} of {total} {what} covered"


# ------------------------------------------------------------------------------ evaluator


def evaluator_for(trainer: "Trainer") -> Callable[["Trainer"], dict[str, Any]] | None:
    """A function that measures a trainer's generator on its data set, or None when the
    data set has no metric (an image set whose classifier file is absent).

    The function draws its samples from a fixed set of noise vectors (its own generator,
    seeded from config.seed), so successive evaluations of one run differ only by the
    generator's weights. It returns scalar metrics (ints and floats, which Trainer.train
    adds to the history and metrics.csv) and, for the pictures, ``histogram`` (list),
    ``histogram_labels``, ``histogram_title`` and ``warning`` (a sentence or None).
    Image sets and spiral also return ``real_*`` values: the same metric for real
    held-out data (the test split), computed once here; they stay constant over a run.
    """
    dataset, config = trainer.dataset, trainer.config
    noise_rng = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET)
    if dataset.strokes is not None:
        return _drawn_evaluator(trainer, torch.randn(MODE_SAMPLES, config.noise_dim, generator=noise_rng))
    if dataset.modes is not None:
        return _mode_evaluator(dataset, torch.randn(MODE_SAMPLES, config.noise_dim, generator=noise_rng))
    if not dataset.is_image:
        return _spiral_evaluator(trainer, torch.randn(MODE_SAMPLES, config.noise_dim, generator=noise_rng))
    from .classifier import load_classifier

    classifier = load_classifier(config.data, device=trainer.device)
    if classifier is None:
        return None
    return _image_evaluator(trainer, classifier, noise_rng)


def _mode_evaluator(dataset, noise: torch.Tensor):
    modes = dataset.modes.cpu().numpy()
    std = float(dataset.mode_std)
    labels = [str(k) for k in range(len(modes))]

    def evaluate(trainer: "Trainer") -> dict[str, Any]:
        measured = mode_metrics(trainer.generate(noise), modes, std)
        counts = measured.pop("mode_counts")
        return {**measured, "histogram": counts, "histogram_labels": labels,
                "histogram_title": "high-quality samples per mode", "histogram_kind": "modes",
                "warning": coverage_warning(measured["modes_covered"], len(modes), "modes")}

    return evaluate


def distance_to_strokes(samples: np.ndarray, strokes) -> tuple[np.ndarray, np.ndarray]:
    """Index of each sample's nearest stroke (n,) and the Euclidean distance to it (n,): the
    distance to the nearest point of the stroke's polyline (a dot is a point)."""
    samples = np.asarray(samples, np.float64)
    starts, ends, owner = [], [], []
    for k, stroke in enumerate(strokes):
        stroke = np.asarray(stroke, np.float64)
        a, b = (stroke, stroke) if len(stroke) == 1 else (stroke[:-1], stroke[1:])
        starts.append(a), ends.append(b), owner.append(np.full(len(a), k))
    a, b, owner = np.concatenate(starts), np.concatenate(ends), np.concatenate(owner)  # (m, 2), m <= 400
    direction = b - a
    span = (direction ** 2).sum(axis=1)
    best = np.full(len(samples), np.inf)
    index = np.zeros(len(samples), np.int64)
    for start in range(0, len(samples), 512):
        p = samples[start:start + 512, None, :]  # (c, 1, 2)
        t = ((p - a) * direction).sum(axis=2) / np.where(span > 0, span, 1.0)
        t = np.clip(np.where(span > 0, t, 0.0), 0.0, 1.0)
        d = np.sqrt((((a + t[..., None] * direction) - p) ** 2).sum(axis=2))  # (c, m)
        nearest = d.argmin(axis=1)
        best[start:start + 512] = d[np.arange(len(d)), nearest]
        index[start:start + 512] = owner[nearest]
    return index, best


def drawn_metrics(samples: np.ndarray, strokes, std: float) -> dict[str, Any]:
    """The mode metrics of VEEGAN and PacGAN with the drawing's strokes as the modes: each
    stroke or dot is one mode of equal weight (that is how ganapp.data builds a drawn set),
    a sample is high quality within 3 std of the drawn ink, a stroke is covered when it is
    the nearest stroke of a high-quality sample, and mode_kl compares the histogram with
    the even one. Coverage *along* a long stroke is not in these; nn_distance says it."""
    index, distance = distance_to_strokes(samples, strokes)
    good = distance <= HIGH_QUALITY_STDS * std
    counts = np.bincount(index[good], minlength=len(strokes))
    return {"modes_covered": int((counts > 0).sum()), "high_quality": round(100.0 * float(good.mean()), 6),
            "mode_kl": kl_from_uniform(counts), "mode_counts": [int(c) for c in counts]}


def _drawn_evaluator(trainer: "Trainer", noise: torch.Tensor):
    """A drawn set: its strokes are the modes (drawn_metrics), and the symmetric
    nearest-neighbour distance to the data (as for spiral) says whether whole strokes are
    covered; real_nn_distance is the same for held-out points of the drawing."""
    config, dataset = trainer.config, trainer.dataset
    strokes, std = dataset.strokes, float(dataset.mode_std)
    pick = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET + 1)
    data = dataset.data.cpu()
    reference = data[torch.randperm(len(data), generator=pick)[:SPIRAL_REFERENCE_POINTS]].numpy()
    from .data import drawn_dataset

    held_out = drawn_dataset(config.drawn_points, seed=config.seed, split="test", n=len(noise)).data.numpy()
    real = nearest_neighbour_distance(held_out, reference)
    labels = [str(k + 1) for k in range(len(strokes))]

    def evaluate(trainer: "Trainer") -> dict[str, Any]:
        samples = trainer.generate(noise)
        measured = drawn_metrics(samples, strokes, std)
        counts = measured.pop("mode_counts")
        return {**measured, "nn_distance": nearest_neighbour_distance(samples, reference),
                "real_nn_distance": real, "histogram": counts, "histogram_labels": labels,
                "histogram_title": "high-quality samples per drawn stroke", "histogram_kind": "strokes",
                "warning": coverage_warning(measured["modes_covered"], len(strokes), "strokes")}

    return evaluate


def _spiral_evaluator(trainer: "Trainer", noise: torch.Tensor):
    config = trainer.config
    pick = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET + 1)
    data = trainer.dataset.data.cpu()
    reference = data[torch.randperm(len(data), generator=pick)[:SPIRAL_REFERENCE_POINTS]].numpy()
    try:
        held_out = load_dataset(config.data, seed=config.seed, split="test").data[:len(noise)].numpy()
        real = nearest_neighbour_distance(held_out, reference)
    except DataError:
        real = None

    def evaluate(trainer: "Trainer") -> dict[str, Any]:
        return {"nn_distance": nearest_neighbour_distance(trainer.generate(noise), reference),
                "real_nn_distance": real, "histogram": None, "warning": None}

    return evaluate


def _image_evaluator(trainer: "Trainer", classifier, noise_rng: torch.Generator):
    from .classifier import CLASS_NAMES

    config = trainer.config
    train_images = trainer.dataset.data.cpu()
    if len(train_images) > IMAGE_REFERENCE_MAX:
        pick = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET + 1)
        train_images = train_images[torch.randperm(len(train_images), generator=pick)[:IMAGE_REFERENCE_MAX]]
    train_features, _ = classifier.features_and_probabilities(train_images)
    reference = feature_statistics(train_features.numpy())
    num_classes = classifier.architecture["num_classes"]

    try:
        test_images = load_dataset(config.data, seed=config.seed, split="test").data
    except DataError:
        test_images = None
    real: dict[str, Any] = {"real_classifier_score": None, "real_frechet_distance": None,
                            "real_classes_covered": None}
    n_samples = IMAGE_SAMPLES
    if test_images is not None:
        # Samples and held-out images are scored on equally many images, so both
        # numbers carry the same small-sample bias (the Frechet distance's is large).
        n_samples = min(IMAGE_SAMPLES, len(test_images))
        test_features, test_probabilities = classifier.features_and_probabilities(test_images[:n_samples])
        real = {
            "real_classifier_score": classifier_score(test_probabilities.numpy()),
            "real_frechet_distance": frechet_distance_from_stats(*feature_statistics(test_features.numpy()), *reference),
            "real_classes_covered": int((class_histogram(test_probabilities.numpy()) > 0).sum()),
        }
    noise = torch.randn(n_samples, config.noise_dim, generator=noise_rng)
    labels = CLASS_NAMES.get(config.data, [str(k) for k in range(num_classes)])

    def evaluate(trainer: "Trainer") -> dict[str, Any]:
        features, probabilities = classifier.features_and_probabilities(torch.from_numpy(trainer.generate(noise)))
        probabilities = probabilities.numpy()
        counts = class_histogram(probabilities)
        covered = int((counts > 0).sum())
        return {
            "classifier_score": classifier_score(probabilities),
            "frechet_distance": frechet_distance_from_stats(*feature_statistics(features.numpy()), *reference),
            "classes_covered": covered,
            **real,
            "histogram": [int(c) for c in counts], "histogram_labels": labels,
            "histogram_title": "samples per class (the classifier's top guess)", "histogram_kind": "classes",
            "warning": coverage_warning(covered, num_classes, "classes"),
        }

    return evaluate


# ------------------------------------------------------------------------------ picture


def metrics_picture(measured: dict[str, Any], *, size: tuple[int, int] = (320, 160),
                    lang: str = "en") -> np.ndarray | None:
    """The per-mode (or per-class) bar chart of one measurement, as RGB uint8 (H, W, 3).

    Bars under a quarter of an even share are drawn in the warning colour; the title is
    the warning when there is one. None when the measurement has no histogram (spiral).
    """
    counts = measured.get("histogram")
    if not counts:
        return None
    total = float(sum(counts))
    # With nothing counted every bar is empty, and every one of them is news: all red.
    threshold = LOW_SHARE * total / len(counts) if total > 0 else 0.5
    title = measured.get("warning") or measured.get("histogram_title")
    kind = measured.get("histogram_kind")  # "modes", "strokes" or "classes": the title in `lang`
    lang = picture_text.picture_language(lang)
    if lang != "en" and kind in ("modes", "strokes", "classes"):
        covered = measured.get("classes_covered" if kind == "classes" else "modes_covered")
        title = (picture_text.word("collapse", lang, covered=int(covered), total=len(counts),
                                   what=picture_text.word(kind, lang))
                 if measured.get("warning") and covered is not None else picture_text.word(f"per_{kind}", lang))
    return render.bar_chart(counts, labels=measured.get("histogram_labels"), size=size,
                            highlight_below=threshold, title=title, lang=lang)
