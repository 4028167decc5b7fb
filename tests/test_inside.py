"""The maths and drawing of "see inside the game" (ganapp.inside, ganapp.render_inside), and
how the job sends them (ganapp.worker) and the server keeps them (ganapp.server.manager).

Each view is checked against something computed independently: D called point by point,
autograd on single points, central finite differences in float64, the minibatch layer's own
output, hand-counted histograms, and the training step's own G loss.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganapp import inside, render_inside
from ganapp.config import GANConfig
from ganapp.runfiles import plot_limits
from ganapp.techniques import minibatch_features
from ganapp.training import Trainer

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as a job has: two threads on a busy 2-core machine made steps 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = dict(hidden_dim=32, batch_size=32, steps=40, log_every=10, sample_every=10, metrics_every=0)


def trained(steps: int = 30, **kwargs) -> Trainer:
    trainer = Trainer(GANConfig(**{**TINY, **kwargs}))
    for _ in range(steps):
        trainer.train_step()
        trainer.step += 1
    return trainer


def fake_batch(trainer: Trainer, n: int = 32) -> torch.Tensor:
    return torch.as_tensor(trainer.fixed_samples()[:n])


# ---------------------------------------------------------------------------- D's heatmap


def test_heatmap_equals_d_on_every_cell_of_the_grid():
    trainer = trained()
    limits = plot_limits(trainer.dataset)
    values = inside.heatmap(trainer.discriminator, limits, resolution=64)
    assert values.shape == (64, 64)
    xmin, xmax, ymin, ymax = limits
    # The grid built independently: cell centres, row 0 at the top (largest y).
    xs = np.linspace(xmin, xmax, 65)[:-1] + (xmax - xmin) / 128
    ys = np.linspace(ymax, ymin, 65)[:-1] - (ymax - ymin) / 128
    points = torch.tensor([[x, y] for y in ys for x in xs], dtype=torch.float32)
    with torch.no_grad():
        expected = torch.sigmoid(trainer.discriminator(points)[0]).reshape(64, 64).numpy()
    np.testing.assert_allclose(values, expected, atol=1e-5)
    with torch.no_grad():  # one cell by hand, alone in its batch
        corner = torch.sigmoid(trainer.discriminator(torch.tensor([[xs[0], ys[0]]], dtype=torch.float32))[0])
    assert values[0, 0] == pytest.approx(float(corner), abs=1e-5)
    assert 0.0 <= values.min() <= values.max() <= 1.0


@pytest.mark.parametrize("loops", [True, False], ids=["compiled loops", "tensors"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_heatmap_with_minibatch_features_scores_each_point_as_one_more_member_of_the_batch(reduction, loops,
                                                                                            monkeypatch):
    from ganapp.techniques import minibatch_kernel

    if loops and minibatch_kernel.numba is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(minibatch_kernel, "ENABLED", loops)
    taken = []
    monkeypatch.setattr(minibatch_kernel, "cross", lambda *a, cross=minibatch_kernel.cross: taken.append(1) or cross(*a))
    trainer = trained(minibatch_discrimination=True, minibatch_reduction=reduction)
    batch = fake_batch(trainer, 24)
    limits = plot_limits(trainer.dataset)
    values = inside.heatmap(trainer.discriminator, limits, batch=batch, resolution=64)
    points = inside.grid_points(limits, 64)
    for index in (0, 63, 2080, 4095):
        with torch.no_grad():
            logits, _ = trainer.discriminator(torch.cat([batch, points[index:index + 1]]))
        assert values.flat[index] == pytest.approx(float(torch.sigmoid(logits[-1])), abs=1e-5)
    assert bool(taken) == loops  # the heatmap takes the loops where they are (the tensors agree to rounding)
    with pytest.raises(ValueError):
        inside.heatmap(trainer.discriminator, limits)  # no batch to compare with


def test_heatmap_layer_puts_each_cells_colour_where_its_points_are_drawn():
    values = np.random.default_rng(0).random((64, 64))
    layer = render_inside.heatmap_layer(values, size=320)
    assert layer.shape == (320, 320, 4) and layer.dtype == np.uint8
    top, left, side = render_inside.render._plot_box(320)
    inner = side - 5
    assert layer[:top, :, 3].max() == 0  # the legend strip stays transparent
    assert layer[top + side // 2, left + side // 2, 3] == 255
    colours = render_inside.colour_scale(values)
    limits = (-2.0, 2.0, -1.0, 3.0)
    rng = np.random.default_rng(1)
    for x, y in rng.uniform([-2, -1], [2, 3], size=(50, 2)):
        # scatter_2d's own mapping of a data point to its pixel
        col = left + 2 + int(np.rint((x + 2) / 4 * inner))
        row = top + 2 + int(np.rint((3 - y) / 4 * inner))
        i, j = min(int((3 - y) / 4 * 64), 63), min(int((x + 2) / 4 * 64), 63)
        pixel = layer[row, col, :3]
        # rounding to a pixel may land in the neighbouring cell at a boundary
        near = [colours[a, b] for a in range(max(i - 1, 0), min(i + 2, 64)) for b in range(max(j - 1, 0), min(j + 2, 64))]
        assert any((pixel == c).all() for c in near), (x, y)
        assert (pixel == colours[i, j]).all() or abs((x + 2) / 4 * 64 - round((x + 2) / 4 * 64)) < 0.5
    assert tuple(render_inside.colour_scale(np.array([0.0, 0.5, 1.0]))[1]) == (255, 255, 255)


# ---------------------------------------------------------------------------- G's push


def _training_g_loss(trainer: Trainer) -> tuple[float, torch.Tensor, torch.Tensor, Trainer]:
    """Run one real training step on a copy, and return its G loss together with the generated
    batch and real batch that step used (replayed from the random streams' states)."""
    copy_ = copy.deepcopy(trainer)
    data_state, noise_state = copy_.data_rng.get_state(), copy_.noise_rng.get_state()
    generator_before = copy.deepcopy(copy_.generator)
    result = copy_.train_step()
    data_rng = torch.Generator().manual_seed(0)
    data_rng.set_state(data_state)
    noise_rng = torch.Generator().manual_seed(0)
    noise_rng.set_state(noise_state)
    config = copy_.config
    x_real = copy_.dataset.sample(config.batch_size, data_rng)
    z = torch.randn(config.batch_size, config.noise_dim, generator=noise_rng)
    with torch.no_grad():
        x_fake = generator_before(z)  # training mode, as in the step
    return float(result.g_loss), x_fake, x_real, copy_


@pytest.mark.parametrize("kwargs", [dict(), dict(generator_loss="saturating"), dict(feature_matching=True),
                                    dict(minibatch_discrimination=True),
                                    dict(minibatch_discrimination=True, feature_matching=True),
                                    dict(label_smoothing=0.9, virtual_batch_norm=True)])
def test_the_arrows_loss_is_the_loss_the_training_step_gives_g(kwargs):
    trainer = trained(10, **kwargs)
    g_loss, x_fake, x_real, after = _training_g_loss(trainer)
    config = after.config
    loss = inside.generator_loss_of_points(after.discriminator, x_fake, feature_matching=config.feature_matching,
                                           saturating=config.generator_loss == "saturating", real_batch=x_real)
    assert float(loss.detach()) == pytest.approx(g_loss, rel=1e-5, abs=1e-6)


def test_vanilla_push_is_minus_the_hand_derived_gradient():
    # Non-saturating loss: L = (1/n) sum softplus(-l(x_i)), so -dL/dx_i = (1/n) sigmoid(-l_i) dl/dx_i,
    # with dl/dx_i from autograd on the single point (D has no batch coupling here).
    trainer = trained()
    batch = fake_batch(trainer, 16)
    vectors = inside.push(trainer.discriminator, batch, feature_matching=False, saturating=False)
    assert vectors.shape == (16, 2)
    for i in range(16):
        x = batch[i:i + 1].clone().requires_grad_(True)
        logit = trainer.discriminator(x)[0][0]
        (dl_dx,) = torch.autograd.grad(logit, x)
        expected = torch.sigmoid(-logit.detach()) * dl_dx[0] / 16
        np.testing.assert_allclose(vectors[i], expected.numpy(), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("kwargs", [dict(), dict(generator_loss="saturating"), dict(feature_matching=True),
                                    dict(minibatch_discrimination=True),
                                    dict(minibatch_discrimination=True, minibatch_reduction="sum"),
                                    dict(minibatch_discrimination=True, feature_matching=True)])
def test_push_is_minus_the_gradient_by_finite_differences(kwargs):
    trainer = trained(**kwargs)
    config = trainer.config
    batch = fake_batch(trainer, 12)
    real = trainer.dataset.data[:12]
    options = dict(feature_matching=config.feature_matching, saturating=config.generator_loss == "saturating")
    vectors = inside.push(trainer.discriminator, batch, real_batch=real, **options)
    d64 = copy.deepcopy(trainer.discriminator).double()
    points, real64 = batch.double(), real.double()

    def loss(p: torch.Tensor) -> float:
        with torch.no_grad():
            return float(inside.generator_loss_of_points(d64, p, real_batch=real64, **options))

    h = 1e-6
    for i in (0, 5, 11):
        for k in (0, 1):
            plus, minus = points.clone(), points.clone()
            plus[i, k] += h
            minus[i, k] -= h
            numeric = -(loss(plus) - loss(minus)) / (2 * h)
            assert vectors[i, k] == pytest.approx(numeric, rel=2e-3, abs=1e-6), (i, k)
    # A point's push depends on its batch-mates with minibatch features or feature matching (the
    # batch's mean); otherwise it is its own term of a mean: half the batch, twice the push.
    alone = inside.push(trainer.discriminator, batch[:6], real_batch=real, **options)
    independent = np.allclose(alone / 2, vectors[:6], rtol=1e-4, atol=1e-8)
    assert independent == (not (config.minibatch_discrimination or config.feature_matching))


def test_push_leaves_d_untouched():
    trainer = trained(minibatch_discrimination=True)
    before = copy.deepcopy(trainer.discriminator.state_dict())
    grads = [None if p.grad is None else p.grad.clone() for p in trainer.discriminator.parameters()]
    inside.push(trainer.discriminator, fake_batch(trainer), feature_matching=False, saturating=False)
    for p, g in zip(trainer.discriminator.parameters(), grads):  # the last step's gradients, as they were
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    for name, value in trainer.discriminator.state_dict().items():
        assert torch.equal(value, before[name])


def test_arrows_point_along_the_push_and_are_scaled_for_display():
    limits = (-1.0, 1.0, -1.0, 1.0)
    points = np.array([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.2]] * 4)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]] * 4) * 1e-3
    starts, d = render_inside.arrow_pixels(points, vectors, limits)
    top, left, side = render_inside.render._plot_box(320)
    assert starts[0] == pytest.approx([left + 2 + (side - 5) / 2, top + 2 + (side - 5) / 2])
    assert d[0, 0] > 0 and abs(d[0, 1]) < 1e-9  # right stays right
    assert d[1, 1] < 0 and abs(d[1, 0]) < 1e-9  # up is up: pixel rows grow downwards
    assert d[2, 0] < 0 and d[2, 1] > 0
    lengths = np.hypot(d[:, 0], d[:, 1])
    assert lengths.max() <= 2 * render_inside.ARROW_PIXELS + 1e-9
    assert np.percentile(lengths, 90) == pytest.approx(render_inside.ARROW_PIXELS)
    layer = render_inside.arrows_layer(points, vectors, limits)
    assert layer.shape == (320, 320, 4)
    x, y = starts[0]
    assert layer[int(round(y)), int(round(x + 10)), 3] > 0  # ink along the first arrow
    assert layer[5, 5, 3] == 0  # transparent elsewhere
    # A point in a corner pushed outwards: its arrow stops at the plot box's frame (it drew
    # over the legend above the box; seen in a user test's screenshot of a collapsed run).
    corner = render_inside.arrows_layer(np.array([[-1.0, 1.0]] * 10), np.array([[-1.0, 1.0]] * 10), limits)
    inked = np.argwhere(corner[:, :, 3] > 0)
    assert len(inked) > 0
    assert inked[:, 0].min() >= top and inked[:, 1].min() >= left
    assert inked[:, 0].max() < top + side and inked[:, 1].max() < left + side


# ---------------------------------------------------------------------------- lenses


def test_closeness_matrix_is_the_minibatch_layers_own():
    torch.manual_seed(0)
    features, tensor = torch.randn(9, 6), torch.randn(6, 4, 3) * 0.3
    matrix = inside.closeness(features, features, tensor)  # (B, n, n)
    assert matrix.shape == (4, 9, 9)
    m = torch.einsum("na,abc->nbc", features, tensor)
    for b, i, j in ((0, 0, 1), (3, 8, 2), (2, 4, 4)):  # the paper's formula, term by term
        assert float(matrix[b, i, j]) == pytest.approx(float(torch.exp(-(m[i, b] - m[j, b]).abs().sum())), rel=1e-5)
    # the layer's o(x): the sum over the others (self excluded), or their mean
    np.testing.assert_allclose((matrix.sum(dim=2) - 1).t(), minibatch_features(features, tensor, "sum"),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((matrix.sum(dim=2) - 1).t() / 8, minibatch_features(features, tensor, "mean"),
                               rtol=1e-5, atol=1e-6)


def test_closeness_lens_lights_up_for_a_collapsed_batch():
    trainer = trained(minibatch_discrimination=True)
    real = trainer.dataset.data[:16]
    collapsed = real[:1].repeat(16, 1)
    lens = inside.closeness_lens(trainer.discriminator, real, collapsed)
    kernels = trainer.config.minibatch_kernels
    np.testing.assert_allclose(lens["fake_matrix"], kernels, rtol=1e-6)  # every pair identical to D
    np.testing.assert_allclose(np.diag(lens["real_matrix"]), kernels, rtol=1e-6)
    assert lens["real_matrix"].mean() < lens["fake_matrix"].mean()
    layer = trainer.discriminator.minibatch
    with torch.no_grad():
        expected = minibatch_features(trainer.discriminator.body(real), layer.tensor, layer.reduction).sum(1)
    np.testing.assert_allclose(lens["real_o"], expected.numpy(), rtol=1e-6)
    assert lens["fake_o"] == pytest.approx(np.full(16, kernels * 1.0))  # mean form: 1 per kernel when identical


@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_vbn_demo_outputs_move_with_batch_mates_under_bn_and_not_under_vbn(data):
    trainer = trained(5, virtual_batch_norm=True, data=data, hidden_dim=32)
    before = copy.deepcopy(trainer.generator.state_dict())
    g = torch.Generator().manual_seed(3)
    noise, mates_a, mates_b = (torch.randn(n, trainer.config.noise_dim, generator=g) for n in (8, 24, 24))
    demo = inside.vbn_demo(trainer.generator, noise, mates_a, mates_b)
    assert demo["vbn_shift"] < 1e-6
    assert demo["bn_shift"] > 1e-2
    assert np.abs(demo["vbn_a"] - demo["vbn_b"]).max() < 1e-6
    assert demo["bn_a"].shape == demo["vbn_a"].shape == (8, *trainer.dataset.sample_shape)
    for name, value in trainer.generator.state_dict().items():  # the run's G is untouched
        assert torch.equal(value, before[name])
    twin = inside.batch_norm_twin(trainer.generator)
    for layer, source in zip(twin.layers, trainer.generator.layers):  # the same weights
        for p, q in zip(layer.parameters(), source.parameters()):
            assert torch.equal(p, q)
    for norm, source in zip(twin.norms, trainer.generator.norms):
        assert isinstance(norm, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))
        assert torch.equal(norm.weight, source.weight)
    with pytest.raises(ValueError):
        inside.vbn_demo(trained(2).generator, noise, mates_a, mates_b)


def test_real_histogram_counts_by_hand():
    values = np.array([0.0, 0.04, 0.05, 0.5, 0.51, 0.97, 1.0, 0.9])
    counts, edges = inside.real_histogram(values, bins=20)
    assert len(edges) == 21 and edges[0] == 0 and edges[-1] == 1
    expected = np.zeros(20, int)
    for index in (0, 0, 1, 10, 10, 19, 19, 18):
        expected[index] += 1
    assert counts.tolist() == expected.tolist()
    assert counts.sum() == len(values)


def test_real_probabilities_are_d_on_real_batches_of_the_training_size():
    trainer = trained(minibatch_discrimination=True, label_smoothing=0.9)
    real = trainer.dataset.data[:96]
    probabilities = inside.batched_real_probabilities(trainer.discriminator, real, 32)
    with torch.no_grad():
        second = torch.sigmoid(trainer.discriminator(real[32:64])[0]).numpy()
    np.testing.assert_allclose(probabilities[32:64], second, rtol=1e-6)
    counts, _ = inside.real_histogram(probabilities)
    assert counts.sum() == 96


def test_feature_means_and_distance_are_feature_matchings():
    trainer = trained(feature_matching=True)
    real, fake = trainer.dataset.data[:40], fake_batch(trainer, 40)
    means = inside.feature_means(trainer.discriminator, real, fake)
    with torch.no_grad():
        f_real, f_fake = trainer.discriminator.body(real), trainer.discriminator.body(fake)
    np.testing.assert_allclose(means["real"], f_real.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert means["distance"] == pytest.approx(float(((f_real.mean(0) - f_fake.mean(0)) ** 2).sum()), rel=1e-5)


# ---------------------------------------------------------------------------- in the job


def _png_size(data: bytes) -> tuple[tuple[int, int], str]:
    image = Image.open(io.BytesIO(data))
    return image.size, image.mode


def test_views_change_nothing_in_training():
    config = GANConfig(**{**TINY, "minibatch_discrimination": True, "feature_matching": True,
                          "label_smoothing": 0.9})
    plain, viewed = Trainer(config), Trainer(config)
    views = render_inside.InsideViews(viewed)
    for step in range(12):
        plain.train_step()
        viewed.train_step()
        if step % 3 == 0:
            views.draw(step, viewed.fixed_samples())
    for (name, p), q in zip(plain.generator.state_dict().items(), viewed.generator.state_dict().values()):
        assert torch.equal(p, q), name
    for (name, p), q in zip(plain.discriminator.state_dict().items(), viewed.discriminator.state_dict().values()):
        assert torch.equal(p, q), name
    assert torch.equal(plain.data_rng.get_state(), viewed.data_rng.get_state())


def test_inside_views_draw_each_technique_on_when_it_is_on():
    trainer = trained(10, minibatch_discrimination=True, feature_matching=True, label_smoothing=0.8,
                      virtual_batch_norm=True)
    views = render_inside.InsideViews(trainer)
    pictures, numbers = views.draw(10, trainer.fixed_samples())
    assert set(pictures) == {"heatmap", "arrows", "mbd", "vbn", "ls", "fm", "fm_distance"}
    for name in ("heatmap", "arrows"):
        assert _png_size(pictures[name]) == ((320, 320), "RGBA")
    assert numbers["ls_alpha"] == 0.8 and numbers["vbn_vbn_shift"] < 1e-6 < numbers["vbn_bn_shift"]
    vanilla = trained(3)
    assert set(render_inside.InsideViews(vanilla).draw(3, vanilla.fixed_samples())[0]) == {"heatmap", "arrows"}
    digits = trained(3, data="digits", minibatch_discrimination=True)
    assert set(render_inside.InsideViews(digits).draw(3, digits.fixed_samples())[0]) == {"mbd"}


def test_rgba_png_round_trips():
    array = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    image = Image.open(io.BytesIO(render_inside.rgba_png(array)))
    assert image.mode == "RGBA" and np.array_equal(np.asarray(image), array)
    with pytest.raises(ValueError):
        render_inside.rgba_png(array[..., :3])


def test_the_job_sends_the_views_with_each_picture_and_survives_a_drawing_error(tmp_path, monkeypatch):
    from ganapp import worker
    from ganapp.server.messages import Done, Inside, Samples

    config = GANConfig(**{**TINY, "steps": 30, "minibatch_discrimination": True})
    messages = []
    spec = {"kind": "train", "config": config.to_dict(), "out_dir": str(tmp_path / "a"), "every_picture": True}
    assert worker.run(spec, messages.append, lambda: False) == "finished"
    samples = [m for m in messages if isinstance(m, Samples)]
    views = [m for m in messages if isinstance(m, Inside)]
    assert [m.step for m in views] == [m.step for m in samples] and len(views) >= 3
    for message in views:
        assert {"heatmap", "arrows", "mbd"} <= set(message.pictures)
        assert _png_size(message.pictures["heatmap"])[0] == _png_size(samples[0].png)[0]  # the same geometry
    for index, message in enumerate(messages):  # each Inside follows its Samples
        if isinstance(message, Inside):
            assert isinstance(messages[index - 1], Samples) and messages[index - 1].step == message.step

    def broken(self, step, samples):
        raise RuntimeError("a drawing bug")

    monkeypatch.setattr(render_inside.InsideViews, "draw", broken)
    messages.clear()
    spec["out_dir"] = str(tmp_path / "b")
    assert worker.run(spec, messages.append, lambda: False) == "finished"
    assert not any(isinstance(m, Inside) for m in messages)
    assert isinstance(messages[-1], Done) and messages[-1].state == "finished"
    spec.update(out_dir=str(tmp_path / "c"), inside=False)
    monkeypatch.undo()
    messages.clear()
    worker.run(spec, messages.append, lambda: False)
    assert not any(isinstance(m, Inside) for m in messages)


def test_the_server_keeps_the_latest_views(tmp_path):
    from ganapp.jobs import JobManager, Limits, Run
    from ganapp.server.manager import INSIDE_KEPT
    from ganapp.server.messages import Inside

    jobs = JobManager(limits=Limits(max_running=1), runs_dir=tmp_path)
    try:
        run = Run(id="r1", owner="o", name="n", kind="train", config=GANConfig(**TINY), folder=Path(tmp_path))
        jobs._apply(run, Inside(step=10, pictures={"heatmap": b"png"}, numbers={"d_min": 0.1}))
        jobs._apply(run, Inside(step=20, pictures={"arrows": b"png2"}))
        assert run.inside == (20, {"arrows": b"png2"}, {}) and run.inside_count == 2
        assert run.inside_kept == []  # only a pair's runs keep older views
        pair = Run(id="r2", owner="o", name="n", kind="train", config=GANConfig(**TINY), folder=Path(tmp_path),
                   spec={"every_picture": True})
        for step in range(0, 1000, 10):
            jobs._apply(pair, Inside(step=step, pictures={"heatmap": str(step).encode()}))
        assert [v[0] for v in pair.inside_kept] == list(range(1000 - 10 * INSIDE_KEPT, 1000, 10))
        # the page shows a pane held at an older step with that step's views, or none
        from ganapp.web.inside_view import views_at

        assert views_at(pair, None)[0] == 990 and views_at(pair, 2000)[0] == 990
        assert views_at(pair, 985)[0] == 980 and views_at(pair, 990 - 10 * INSIDE_KEPT) is None
    finally:
        jobs.shutdown()


def test_the_page_html_of_the_views_for_a_run_and_a_pair(tmp_path):
    from ganapp.jobs import Run
    from ganapp.web import inside_view

    config = GANConfig(**{**TINY, "minibatch_discrimination": True, "label_smoothing": 0.9})
    pictures = {name: render_inside.rgba_png(np.zeros((4, 4, 4), np.uint8)) for name in ("heatmap", "arrows", "mbd",
                                                                                          "ls")}
    run = Run(id="r1", owner="o", name="<b>mine</b>", kind="train", config=config, folder=Path(tmp_path))
    assert inside_view.layers_html(run, "en") == ""
    assert "first picture" in inside_view.lens_html(run, "en") or "Nothing" in inside_view.lens_html(run, "en")
    run.inside, run.inside_count = (40, pictures, {"d_min": 0.1, "d_max": 0.9, "ls_alpha": 0.9}), 1
    layers = inside_view.layers_html(run, "en")
    assert layers.count("<img") == 2 and "inside-heatmap" in layers and "<b>mine" not in layers
    lens = inside_view.lens_html(run, "en")
    assert 'id="lens-mbd"' in lens and 'id="lens-ls"' in lens and "lens-fm" not in lens and "lens-vbn" not in lens
    assert "0.1 to 0.9" in lens and "α = 0.9" in lens
    assert "判別器" in inside_view.lens_html(run, "zh-TW")
    partner = Run(id="r2", owner="o", name="<i>right</i>", kind="train", config=config, folder=Path(tmp_path))
    partner.inside, partner.inside_count = (20, {"mbd": pictures["mbd"]}, {}), 1
    from types import SimpleNamespace

    ui = SimpleNamespace(inside_layers="a", inside_layers_b="b", inside_lens="lens")
    out, now = {}, {}
    inside_view.live(ui, run, partner, {}, now, out, "en", True, (None, None))
    assert 'id="lens-mbd-b"' in out["lens"] and "&lt;i&gt;right&lt;/i&gt;" in out["lens"] and "<i>" not in out["lens"]
    assert out["b"] == ""  # the partner has no 2-D layers
    again = {}
    inside_view.live(ui, run, partner, now, dict(now), again, "en", False, (None, None))
    assert again == {}  # nothing new: nothing sent
