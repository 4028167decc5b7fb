"""Tests for ganapp.metrics and ganapp.classifier: the checks of the metrics issue on
constructed samples, the shipped digits classifier, and the evaluator on real short runs."""

import math
import pickle

import numpy as np
import pytest
import torch

from ganapp import classifier as classifier_module
from ganapp import metrics, render
from ganapp.classifier import ClassifierError, classifier_path, load_classifier
from ganapp.config import GANConfig
from ganapp.data import load_dataset
from ganapp.training import HISTORY_COLUMNS, Trainer


@pytest.fixture(scope="module")
def ring8():
    return load_dataset("ring8")


@pytest.fixture(scope="module")
def digits_classifier():
    model = load_classifier("digits")
    assert model is not None, "checkpoints/classifier-digits.safetensors is missing; run scripts/train_classifier.py"
    return model


# ------------------------------------------------------------------------------ 2-D sets


def test_all_samples_on_one_mode_cover_one_mode_with_kl_log_8(ring8):
    modes = ring8.modes.numpy()
    rng = np.random.default_rng(0)
    samples = modes[3] + ring8.mode_std * rng.standard_normal((2500, 2))
    measured = metrics.mode_metrics(samples, modes, ring8.mode_std)
    assert measured["modes_covered"] == 1
    assert measured["mode_kl"] == pytest.approx(math.log(8))
    assert measured["mode_counts"][3] == sum(measured["mode_counts"])
    assert measured["high_quality"] > 95  # 1 - exp(-9/2) = 98.9% of a 2-D Gaussian lies within 3 std


def test_samples_spread_evenly_cover_all_8_modes_with_kl_about_0(ring8):
    measured = metrics.mode_metrics(ring8.data[:2500].numpy(), ring8.modes.numpy(), ring8.mode_std)
    assert measured["modes_covered"] == 8
    assert measured["mode_kl"] < 0.01
    assert measured["high_quality"] == pytest.approx(98.9, abs=1.0)
    exact = metrics.mode_metrics(np.repeat(ring8.modes.numpy(), 300, axis=0), ring8.modes.numpy(), ring8.mode_std)
    assert exact["mode_counts"] == [300] * 8 and exact["mode_kl"] == pytest.approx(0.0, abs=1e-12)


def test_samples_far_from_every_mode_are_not_high_quality(ring8):
    samples = np.zeros((2500, 2))  # the ring's centre, 2 away from every mode, 100 standard deviations
    measured = metrics.mode_metrics(samples, ring8.modes.numpy(), ring8.mode_std)
    assert measured["high_quality"] == 0.0
    assert measured["modes_covered"] == 0
    assert measured["mode_kl"] == pytest.approx(math.log(8))  # no histogram: reported as total collapse


def test_kl_ignores_empty_modes_and_grows_with_collapse():
    assert metrics.kl_from_uniform([5, 5, 0, 0]) == pytest.approx(math.log(2))  # 0 log 0 = 0
    assert metrics.kl_from_uniform([1, 1, 1, 1]) == 0.0
    assert metrics.kl_from_uniform([0, 0, 0]) == pytest.approx(math.log(3))
    assert metrics.kl_from_uniform([4, 2, 1, 1]) < metrics.kl_from_uniform([6, 2, 0, 0])


def test_grid25_collapse_to_three_modes_warns():
    grid = load_dataset("grid25")
    modes = grid.modes.numpy()
    samples = np.concatenate([np.repeat(modes[[0, 7, 12]], [500, 300, 200], axis=0)])
    measured = metrics.mode_metrics(samples, modes, grid.mode_std)
    assert measured["modes_covered"] == 3
    assert metrics.coverage_warning(3, 25, "modes") == "Mode collapse: only 3 of 25 modes covered"
    assert metrics.coverage_warning(13, 25, "modes") is None


def test_nearest_neighbour_distance_is_symmetric_chunked_and_falls_with_fit():
    spiral = load_dataset("spiral").data.numpy()
    data, held_out = spiral[:2000], spiral[2000:4000]
    assert metrics.nearest_neighbour_distance(data, data) == 0.0
    assert metrics.nearest_neighbour_distance(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(5.0)
    good = metrics.nearest_neighbour_distance(held_out, data)
    assert metrics.nearest_neighbour_distance(held_out, data, chunk=7) == pytest.approx(good, rel=1e-6)
    assert metrics.nearest_neighbour_distance(data, held_out) == pytest.approx(good, rel=1e-6)
    rng = np.random.default_rng(0)
    half = held_out[held_out[:, 0] > 0]  # only half of the spiral: on the data, but not covering it
    blob = rng.normal(scale=0.3, size=(2000, 2))  # neither on the data nor covering it
    assert good < metrics.nearest_neighbour_distance(half, data) < metrics.nearest_neighbour_distance(blob, data)


# ------------------------------------------------------------------------------ classifier score


def test_classifier_score_of_one_hot_predictions_spread_evenly_is_k():
    for k in (2, 10):
        probabilities = np.eye(k)[np.arange(100 * k) % k]
        assert metrics.classifier_score(probabilities) == pytest.approx(k)
        assert metrics.classifier_score(probabilities, splits=10) == pytest.approx(k)


def test_classifier_score_of_identical_predictions_is_1():
    rng = np.random.default_rng(0)
    row = rng.dirichlet(np.ones(10))
    assert metrics.classifier_score(np.tile(row, (500, 1))) == pytest.approx(1.0)
    assert metrics.classifier_score(np.tile(np.eye(10)[4], (500, 1))) == pytest.approx(1.0)


def test_classifier_score_never_exceeds_k():
    rng = np.random.default_rng(1)
    for concentration in (0.01, 0.1, 1.0, 10.0):
        probabilities = rng.dirichlet(np.full(10, concentration), size=300)
        score = metrics.classifier_score(probabilities)
        assert 1.0 <= score <= 10.0 + 1e-9


def test_classifier_score_refuses_logits():
    with pytest.raises(ValueError, match="softmax"):
        metrics.classifier_score(np.array([[2.0, -1.0], [0.5, 0.5]]))


# ------------------------------------------------------------------------------ Frechet distance


def test_frechet_distance_of_a_set_to_itself_is_about_0():
    features = np.random.default_rng(0).normal(size=(1000, 32)) @ np.random.default_rng(1).normal(size=(32, 32))
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift():
    features = np.random.default_rng(0).normal(size=(1000, 16))
    shift = np.linspace(-1, 2, 16)
    assert metrics.frechet_distance(features, features + shift) == pytest.approx((shift**2).sum(), rel=1e-6)


def test_frechet_distance_from_stats_matches_closed_forms():
    # Isotropic: N(0, a^2 I) and N(0, b^2 I) in d dimensions are d (a - b)^2 apart.
    d = 5
    assert metrics.frechet_distance_from_stats(np.zeros(d), 4 * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(d)
    # Non-commuting 2x2 covariances: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M with eigenvalues >= 0.
    a = np.array([[2.0, 0.8], [0.8, 1.0]])
    b = np.array([[1.0, -0.3], [-0.3, 0.5]])
    product = a @ b
    trace_sqrt = math.sqrt(np.trace(product) + 2 * math.sqrt(np.linalg.det(product)))
    expected = 1.0 + np.trace(a) + np.trace(b) - 2 * trace_sqrt
    assert metrics.frechet_distance_from_stats([1.0, 0.0], a, [0.0, 0.0], b) == pytest.approx(expected, rel=1e-9)
    # A singular covariance (a constant feature) stays finite.
    assert math.isfinite(metrics.frechet_distance_from_stats(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), b))


def test_class_histogram_counts_top_predictions():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    assert metrics.class_histogram(probabilities).tolist() == [2, 1, 0]


# ------------------------------------------------------------------------------ shipped classifier


def test_shipped_digits_classifier_is_small_and_at_least_95_percent_accurate(digits_classifier):
    path = classifier_path("digits")
    assert path.stat().st_size < 1_000_000
    meta = digits_classifier.metadata
    assert meta["data"] == "digits" and meta["architecture"]["image_size"] == 8
    assert meta["test_accuracy"] >= 0.95
    test = load_dataset("digits", split="test")
    _, probabilities = digits_classifier.features_and_probabilities(test.data)
    recomputed = float((probabilities.argmax(1) == test.labels).float().mean())
    assert recomputed >= 0.95
    assert recomputed == pytest.approx(meta["test_accuracy"], abs=1e-6)


def test_classifier_score_of_real_digits_is_high_and_of_one_repeated_image_about_1(digits_classifier):
    test = load_dataset("digits", split="test")
    features, probabilities = digits_classifier.features_and_probabilities(test.data)
    assert metrics.classifier_score(probabilities.numpy()) > 8
    assert int((metrics.class_histogram(probabilities.numpy()) > 0).sum()) == 10
    _, repeated = digits_classifier.features_and_probabilities(test.data[:1].repeat(300, 1, 1, 1))
    assert metrics.classifier_score(repeated.numpy()) == pytest.approx(1.0, abs=1e-3)
    # Held-out digits are close to the training digits in feature space; noise is far.
    train_features, _ = digits_classifier.features_and_probabilities(load_dataset("digits").data)
    real = metrics.frechet_distance(features.numpy(), train_features.numpy())
    noise_features, _ = digits_classifier.features_and_probabilities(torch.rand(300, 1, 8, 8) * 2 - 1)
    assert real < metrics.frechet_distance(noise_features.numpy(), train_features.numpy()) / 5


def test_missing_classifier_is_none(tmp_path):
    assert load_classifier("digits", folder=tmp_path) is None


def test_pickled_classifier_file_is_refused(tmp_path, digits_classifier):
    torch.save(digits_classifier.state_dict(), classifier_path("digits", tmp_path))
    with pytest.raises(ClassifierError, match="pickle"):
        load_classifier("digits", folder=tmp_path)
    classifier_path("digits", tmp_path).write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ClassifierError, match="pickle"):
        load_classifier("digits", folder=tmp_path)


def test_corrupt_or_truncated_classifier_file_is_refused(tmp_path):
    target = classifier_path("digits", tmp_path)
    target.write_bytes(b"\x00" * 3)
    with pytest.raises(ClassifierError, match="retrain"):
        load_classifier("digits", folder=tmp_path)
    shipped = classifier_path("digits").read_bytes()
    target.write_bytes(shipped[: len(shipped) // 2])
    with pytest.raises(ClassifierError, match="truncated"):
        load_classifier("digits", folder=tmp_path)


def test_classifier_for_another_data_set_is_refused(tmp_path):
    classifier_path("mnist", tmp_path).write_bytes(classifier_path("digits").read_bytes())
    with pytest.raises(ClassifierError, match="trained on 'digits', not 'mnist'"):
        load_classifier("mnist", folder=tmp_path)


def test_classifier_round_trips_through_save(tmp_path, digits_classifier):
    path = classifier_module.save_classifier(digits_classifier, classifier_path("digits", tmp_path),
                                             data_name="digits", test_accuracy=0.5)
    again = load_classifier("digits", folder=tmp_path)
    assert again.test_accuracy == 0.5 and not list(tmp_path.glob("*.tmp"))
    x = torch.zeros(2, 1, 8, 8)
    assert torch.equal(again(x), digits_classifier(x))
    assert path.stat().st_size < 1_000_000


# ------------------------------------------------------------------------------ evaluator


def _short_run(data, **changes):
    config = GANConfig(data=data, steps=20, log_every=5, metrics_every=10, **changes)
    trainer = Trainer(config, device=torch.device("cpu"))
    evaluate = metrics.evaluator_for(trainer)
    assert evaluate is not None
    seen = []
    trainer.train(evaluate=evaluate, on_metrics=lambda step, measured: seen.append((step, measured)))
    return trainer, evaluate, seen


def test_evaluator_on_a_ring8_run_fills_the_history():
    trainer, evaluate, seen = _short_run("ring8")
    rows = [row for row in trainer.history if "modes_covered" in row]
    assert [row["step"] for row in rows] == [10, 20]
    for row in rows:
        assert set(row) >= set(HISTORY_COLUMNS) | {"modes_covered", "high_quality", "mode_kl"}
        assert isinstance(row["modes_covered"], int) and 0 <= row["high_quality"] <= 100
        assert "histogram" not in row and "warning" not in row  # only numbers go to the history
    measured = seen[-1][1]
    assert len(measured["histogram"]) == 8 and measured["histogram_labels"][0] == "0"
    assert measured["warning"] is None or "of 8 modes" in measured["warning"]
    assert evaluate(trainer) == evaluate(trainer)  # fixed noise: the same weights give the same numbers
    picture = metrics.metrics_picture(measured)
    assert picture.dtype == np.uint8 and picture.shape == (160, 320, 3)


def test_evaluator_on_a_spiral_run_gives_a_nn_distance():
    trainer, _, seen = _short_run("spiral")
    last = trainer.history[-1]
    assert last["nn_distance"] > last["real_nn_distance"] > 0
    assert metrics.metrics_picture(seen[-1][1]) is None


def test_evaluator_on_a_digits_run_gives_image_metrics_beside_real_data():
    trainer, _, seen = _short_run("digits")
    last = trainer.history[-1]
    for name in ("classifier_score", "frechet_distance", "classes_covered"):
        assert name in last
    measured = seen[-1][1]
    assert 1.0 <= measured["classifier_score"] <= 10.0
    assert measured["real_classifier_score"] > 8
    assert 0 <= measured["real_frechet_distance"] < measured["frechet_distance"]
    assert measured["real_classes_covered"] == 10
    assert len(measured["histogram"]) == 10 and sum(measured["histogram"]) == 300  # as many as the test split


def test_evaluator_is_none_for_an_image_set_without_classifier(tmp_path, monkeypatch):
    monkeypatch.setattr(classifier_module, "CLASSIFIER_DIR", tmp_path)
    trainer = Trainer(GANConfig(data="digits", steps=1), device=torch.device("cpu"))
    assert metrics.evaluator_for(trainer) is None


def test_metrics_picture_draws_dropped_modes_and_the_warning_in_the_warning_colour():
    measured = {"histogram": [900, 0, 0, 0, 0, 0, 0, 100], "histogram_labels": [str(k) for k in range(8)],
                "warning": metrics.coverage_warning(2, 8, "modes")}
    picture = metrics.metrics_picture(measured)
    red = np.all(picture == render.WARNING_COLOUR, axis=2)
    blue = np.all(picture == render.BAR_COLOUR, axis=2)
    assert red.any() and blue.any()
    empty = metrics.metrics_picture({"histogram": [0] * 8, "warning": "Mode collapse: only 0 of 8 modes covered"})
    assert np.all(empty == render.WARNING_COLOUR, axis=2).any()
