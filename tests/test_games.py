"""Historical averaging in the tiny games (ganapp.games): hand-computed steps, gradients
against finite differences, the same penalty as the app's HistoricalAverage, the claim
the page makes at its defaults, the bounds, the pictures, and the page's words for them."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganapp import games


# --------------------------------------------------------------------- hand-computed steps
# xy from (1, 1), lr 0.1, weight 0.5. Step 1: every average is the start itself, so the
# penalty's gradient is 0: x1 = 1 - 0.1 * y = 0.9, y1 = 1 + 0.1 * x = 1.1.
# Step 2, plain: x2 = 0.9 - 0.1 * 1.1 = 0.79, y2 = 1.1 + 0.1 * 0.9 = 1.19.
# Step 2, uniform: averages (1 + 0.9) / 2 = 0.95 and (1 + 1.1) / 2 = 1.05;
#   x2 = 0.9 - 0.1 * (1.1 + 2 * 0.5 * (0.9 - 0.95)) = 0.795
#   y2 = 1.1 - 0.1 * (-0.9 + 2 * 0.5 * (1.1 - 1.05)) = 1.185
# Step 2, exponential with decay 0.9: averages 0.9 * 1 + 0.1 * 0.9 = 0.99 and 1.01;
#   x2 = 0.9 - 0.1 * (1.1 + (0.9 - 0.99)) = 0.799,  y2 = 1.1 - 0.1 * (-0.9 + (1.1 - 1.01)) = 1.181
# fx from (0.5, 0.5): f = 0.25, f' = 1, so dV/dx = -0.5, dV/dy = -0.75: x1 = 0.55, y1 = 0.425.
# Step 2: f(0.55) = 0.3025, f' = 1.1: dV/dx = 1.1 * (0.425 - 1) = -0.6325, dV/dy = -0.6975.
#   plain:   x2 = 0.55 + 0.06325 = 0.61325,  y2 = 0.425 - 0.06975 = 0.35525
#   uniform: averages 0.525, 0.4625: x2 = 0.55 - 0.1 * (-0.6325 + 0.025) = 0.61075,
#            y2 = 0.425 - 0.1 * (0.6975 - 0.0375) = 0.359
# Alternating, xy from (1, 1), lr 0.1, weight 0.5: y steps first, then x answers at the new y.
# Step 1: y1 = 1 + 0.1 * 1 = 1.1, x1 = 1 - 0.1 * 1.1 = 0.89.
# Step 2, plain: y2 = 1.1 + 0.1 * 0.89 = 1.189, x2 = 0.89 - 0.1 * 1.189 = 0.7711.
# Step 2, uniform: averages 1.05 (y) and 0.945 (x): y2 = 1.1 - 0.1 * (-0.89 + (1.1 - 1.05)) = 1.184,
#   x2 = 0.89 - 0.1 * (1.184 + (0.89 - 0.945)) = 0.7771.
HAND = [
    ("xy", 0.0, "uniform", 0.99, [(1, 1), (0.9, 1.1), (0.79, 1.19)]),
    ("xy", 0.5, "uniform", 0.99, [(1, 1), (0.9, 1.1), (0.795, 1.185)]),
    ("xy", 0.5, "exponential", 0.9, [(1, 1), (0.9, 1.1), (0.799, 1.181)]),
    ("fx", 0.0, "uniform", 0.99, [(0.5, 0.5), (0.55, 0.425), (0.61325, 0.35525)]),
    ("fx", 0.5, "uniform", 0.99, [(0.5, 0.5), (0.55, 0.425), (0.61075, 0.359)]),
]
HAND_ALTERNATING = [
    ("xy", 0.0, [(1, 1), (0.89, 1.1), (0.7711, 1.189)]),
    ("xy", 0.5, [(1, 1), (0.89, 1.1), (0.7771, 1.184)]),
]


@pytest.mark.parametrize("game, weight, mode, decay, expected", HAND)
def test_the_first_two_steps_match_the_hand_computed_ones(game, weight, mode, decay, expected):
    points = games.trajectory(game, lr=0.1, weight=weight, steps=2, mode=mode, decay=decay)
    np.testing.assert_allclose(points, np.array(expected, float), rtol=0, atol=1e-12)


@pytest.mark.parametrize("game, weight, expected", HAND_ALTERNATING)
def test_alternating_steps_match_the_hand_computed_ones(game, weight, expected):
    points = games.trajectory(game, lr=0.1, weight=weight, steps=2, order="alternating")
    np.testing.assert_allclose(points, np.array(expected, float), rtol=0, atol=1e-12)


def test_the_negative_branch_of_f():
    # x < 0: f(x) = x, f'(x) = 1; from (-1, 2): dV/dx = 1 * (2 - 1) = 1, dV/dy = -1 - 1 = -2.
    assert games.gradient("fx", -1.0, 2.0) == (1.0, -2.0)
    points = games.trajectory("fx", lr=0.1, weight=0.0, steps=1, start=(-1.0, 2.0))
    np.testing.assert_allclose(points[1], [-1.1, 1.8], atol=1e-12)


@pytest.mark.parametrize("game", games.GAMES)
@pytest.mark.parametrize("x, y", [(1.3, -0.7), (-0.8, 2.1), (0.4, 0.9), (2.5, 1.5), (-2.0, -3.0)])
def test_the_gradient_agrees_with_finite_differences(game, x, y):
    h = 1e-6
    numeric = ((games.value(game, x + h, y) - games.value(game, x - h, y)) / (2 * h),
               (games.value(game, x, y + h) - games.value(game, x, y - h)) / (2 * h))
    np.testing.assert_allclose(games.gradient(game, x, y), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("game", games.GAMES)
def test_the_equilibrium_is_where_the_gradient_vanishes(game):
    assert games.gradient(game, *games.EQUILIBRIUM[game]) == (0.0, 0.0)


# --------------------------------------------------------------- the app's own definition
@pytest.mark.parametrize("order", games.ORDERS)
@pytest.mark.parametrize("game, mode", [("xy", "uniform"), ("fx", "uniform"), ("xy", "exponential"),
                                        ("fx", "exponential")])
def test_the_games_use_the_penalty_the_app_trains_with(game, mode, order):
    """Each player's loss + HistoricalAverage.penalty() (the module the Trainer uses, updated
    before the penalty as the Trainer does), stepped with SGD (both at once, or y then x as
    the Trainer steps D then G), gives the same path as ganapp.games."""
    torch = pytest.importorskip("torch")
    from ganapp.techniques.historical_averaging import HistoricalAverage

    lr, weight, decay, steps = 0.05, 0.3, 0.95, 300
    x = torch.nn.Parameter(torch.tensor(games.START[game][0], dtype=torch.float64))
    y = torch.nn.Parameter(torch.tensor(games.START[game][1], dtype=torch.float64))
    averages = [HistoricalAverage([p], mode=mode, weight=weight, decay=decay) for p in (x, y)]
    optimizer = torch.optim.SGD([x, y], lr=lr)

    def value(a, b):
        f = torch.where(a < 0, a, a * a)
        return a * b if game == "xy" else (f - 1) * (b - 1)

    path = [(x.item(), y.item())]
    for _ in range(steps):
        if order == "simultaneous":
            for average in averages:
                average.update()
            x_loss = value(x, y.detach()) + averages[0].penalty()  # x minimises V
            y_loss = -value(x.detach(), y) + averages[1].penalty()  # y maximises V
            optimizer.zero_grad()
            (x_loss + y_loss).backward()  # each loss reaches only its own player
            optimizer.step()
        else:  # (1) update y, like D; (2) update x, like G, against the new y
            averages[1].update()
            y_loss = -value(x.detach(), y) + averages[1].penalty()
            optimizer.zero_grad()
            y_loss.backward()
            optimizer.step()
            averages[0].update()
            x_loss = value(x, y.detach()) + averages[0].penalty()
            optimizer.zero_grad()
            x_loss.backward()
            optimizer.step()
        path.append((x.item(), y.item()))
    ours = games.trajectory(game, lr=lr, weight=weight, steps=steps, mode=mode, decay=decay, order=order)
    np.testing.assert_allclose(ours, np.array(path), rtol=1e-9, atol=1e-12)


def test_the_decay_is_the_apps_default():
    from ganapp.config import GANConfig

    assert games.DEFAULT_DECAY == GANConfig().historical_averaging_decay


# --------------------------------------------------------------------- the page's claim
@pytest.mark.parametrize("game", games.GAMES)
def test_at_the_defaults_plain_gd_leaves_and_historical_averaging_arrives(game):
    result = games.play(game)
    assert result.plain.verdict in ("away", "diverged"), result.plain.verdict
    assert result.averaged.verdict == "reached"
    assert result.averaged.final_distance < games.NEAR
    assert result.plain.distance[-1] > 5 * result.plain.distance[0]


@pytest.mark.parametrize("game", games.GAMES)
def test_alternating_plain_gd_keeps_circling_and_historical_averaging_arrives(game):
    result = games.play(game, order="alternating")
    assert result.plain.verdict == "orbiting"
    start = result.plain.distance[0]
    last_quarter = result.plain.distance[len(result.plain.distance) * 3 // 4:]
    assert last_quarter.min() > 0.5 * start and last_quarter.max() < 1.5 * start
    assert result.averaged.verdict == "reached"


def test_plain_gd_on_xy_spirals_out_by_sqrt_1_plus_lr_squared_per_step():
    lr, steps = 0.05, 1000
    result = games.play("xy", lr=lr, steps=steps)
    radius = result.plain.distance
    np.testing.assert_allclose(radius[1:] / radius[:-1], math.sqrt(1 + lr * lr), rtol=1e-12)
    # The example of techniques.md, section 3: lr 0.1, weight 0.1, 1,000 steps.
    figures = games.play("xy", lr=0.1, weight=0.1, steps=1000)
    assert 200 < figures.plain.final_distance < 210 and figures.averaged.final_distance < 0.01


def test_settings_where_historical_averaging_fails_are_reported_as_such():
    too_heavy = games.play("xy", lr=0.3, weight=5.0, steps=1000)
    assert too_heavy.averaged.verdict == "diverged" and too_heavy.averaged.final_distance == math.inf
    too_light = games.play("fx", lr=0.05, weight=0.05, steps=1000)
    assert too_light.averaged.verdict in ("orbiting", "closer", "away")
    slow = games.play("fx", weight=2.0, steps=1000)
    assert slow.averaged.verdict == "closer" and slow.averaged.final_distance > 0.1


def test_weight_zero_is_plain_gradient_descent():
    result = games.play("fx", weight=0.0, steps=500, lr=0.02)
    np.testing.assert_array_equal(result.plain.points, result.averaged.points)


def test_a_diverging_path_stops_at_the_bound():
    result = games.play("xy", lr=0.5, weight=0.1, steps=5000)
    assert result.plain.diverged and len(result.plain.points) < 5001
    assert np.abs(result.plain.points).max() <= games.ESCAPE
    assert np.isfinite(result.plain.points).all()


# --------------------------------------------------------------------------- bounds
@pytest.mark.parametrize("change, message", [
    (dict(game="chess"), "game must be one of xy, fx; got 'chess'"),
    (dict(mode="ema"), "averaging must be one of uniform, exponential; got 'ema'"),
    (dict(order="random"), "updates must be one of simultaneous, alternating; got 'random'"),
    (dict(lr=0.0), "learning rate must be a number between 0.001 and 0.5; got 0.0"),
    (dict(lr=0.6), "learning rate must be a number between 0.001 and 0.5; got 0.6"),
    (dict(lr=float("nan")), "learning rate must be a number between 0.001 and 0.5; got nan"),
    (dict(lr="0.1"), "learning rate must be a number between 0.001 and 0.5; got 0.1"),
    (dict(lr=True), "learning rate must be a number"),
    (dict(weight=-1), "penalty weight must be a number between 0 and 5; got -1"),
    (dict(weight=float("inf")), "penalty weight must be a number between 0 and 5; got inf"),
    (dict(steps=0), "steps must be a whole number between 1 and 5,000; got 0"),
    (dict(steps=5001), "steps must be a whole number between 1 and 5,000; got 5001"),
    (dict(steps=2.5), "steps must be a whole number between 1 and 5,000; got 2.5"),
    (dict(steps=None), "steps must be a whole number"),
    (dict(decay=1.0), "decay must be strictly between 0 and 1; got 1.0"),
])
def test_inputs_out_of_bounds_are_refused_with_a_clear_message(change, message):
    settings = dict(game="xy", lr=0.05, weight=0.1, steps=100, mode="uniform", decay=0.99) | change
    game = settings.pop("game")
    with pytest.raises(games.GameError) as caught:
        games.play(game, **settings)
    assert str(caught.value).startswith(message), str(caught.value)


def test_steps_given_as_a_whole_float_are_accepted():
    assert len(games.play("xy", steps=10.0).plain.points) == 11


def test_the_summary_is_json_and_bounded():
    result = games.play("fx", steps=1000)
    reply = json.loads(json.dumps(result.summary(max_points=40)))
    assert reply["plain"]["verdict"] == "diverged" and reply["plain"]["final_distance"] is None
    averaged = reply["historical_averaging"]
    assert len(averaged["x"]) == len(averaged["y"]) == len(averaged["steps_shown"]) == 40
    assert averaged["steps_shown"][0] == 0 and averaged["steps_shown"][-1] == 1000
    assert averaged["x"][-1] == result.averaged.points[-1, 0]
    assert averaged["final_distance"] == pytest.approx(result.averaged.final_distance)


def test_the_engine_needs_neither_torch_nor_gradio():
    code = ("import sys, ganapp.games as g; g.plane_png(g.play('fx')); "
            "assert 'torch' not in sys.modules and 'gradio' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- pictures
def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.size == games.SIZE
    return np.asarray(image.convert("RGB"))


def _count(pixels: np.ndarray, colour) -> int:
    return int((pixels == np.array(colour, np.uint8)).all(axis=2).sum())


@pytest.mark.parametrize("game", games.GAMES)
def test_both_pictures_show_both_paths_in_their_colours(game):
    result = games.play(game)
    for png in (games.plane_png(result), games.distance_png(result)):
        pixels = _pixels(png)
        assert _count(pixels, games.PLAIN_COLOUR) > 200 and _count(pixels, games.AVERAGED_COLOUR) > 200


def test_the_pictures_change_with_the_learning_rate():
    first, second = games.play("xy", lr=0.05), games.play("xy", lr=0.08)
    assert games.plane_png(first) != games.plane_png(second)
    assert games.distance_png(first) != games.distance_png(second)


def test_the_distance_picture_puts_the_paths_where_the_distances_are():
    """The blue path's last dot sits lower (nearer) than the orange one's at the defaults."""
    pixels = _pixels(games.distance_png(games.play("xy")))
    rows_blue = np.nonzero((pixels == np.array(games.AVERAGED_COLOUR, np.uint8)).all(axis=2))[0]
    rows_orange = np.nonzero((pixels == np.array(games.PLAIN_COLOUR, np.uint8)).all(axis=2))[0]
    assert rows_blue.max() > rows_orange.max() + 100


# ------------------------------------------------------------------- the page's words
def test_the_page_says_what_the_paths_did_in_both_languages():
    pytest.importorskip("gradio")
    from ganapp.web import games_view

    result = games.play("fx")
    english, chinese = games_view.view_html(result, "en"), games_view.view_html(result, "zh-TW")
    assert "plain gradient descent does not settle" in english
    assert "diverged: left the ±10,000 box at step 873" in english
    assert f"reached the equilibrium: distance {result.averaged.final_distance:.3g} after 1,500 steps" in english
    assert "全班看到的" in chinese and "發散：在第 873 步超出 ±10,000 的範圍" in chinese
    assert 'data-plain="diverged" data-averaged="reached"' in english
    # A setting where neither arrives is not dressed up.
    neither = games_view.view_html(games.play("fx", lr=0.05, weight=2.0, steps=1000), "en")
    assert "Neither reaches the equilibrium" in neither and "closer but not there" in neither
    both = games_view.view_html(games.play("fx", lr=0.01, weight=0.0, steps=100), "en")
    assert "with historical averaging the players reach" not in both


def test_a_bad_value_from_the_page_warns_and_keeps_the_picture(monkeypatch):
    gr = pytest.importorskip("gradio")
    from ganapp.web import games_view

    warned = []
    monkeypatch.setattr(games_view.safety, "warning", warned.append)
    assert isinstance(games_view.redraw("xy", "simultaneous", "uniform", 0.05, 0.1, 99999, "zh-TW"),
                      type(gr.skip()))
    assert warned == ["無法計算這個賽局：steps must be a whole number between 1 and 5,000; got 99999"]
    with pytest.raises(gr.Error, match="penalty weight must be a number between 0 and 5"):
        games_view.game_trajectories("xy", 0.05, 7, 100, "uniform", 10)
