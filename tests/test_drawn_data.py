"""Draw your own data (issue 10, part 4): the drawing's code, sampling, normalising, bounds,
validation, metrics, the checkpoint, the link and the command line, with real files and
real training (tiny runs)."""

import json
import re
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganapp import budget, data, drawn, metrics
from ganapp.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint
from ganapp.checkpoint_format import CheckpointError, check_metadata
from ganapp.config import ConfigError, GANConfig
from ganapp.training import Trainer
from ganapp.web import links

ROOT = Path(__file__).resolve().parent.parent
RING = drawn.shape("ring")
MOONS = drawn.shape("two-moons")


# ------------------------------------------------------------------ the code
def test_a_drawing_round_trips_through_its_code_to_the_quantisation_step():
    strokes = [[(-2.9, 1.0), (0.0, 0.5), (2.5, -2.999)], [(1.25, 1.75)]]
    back = drawn.decode(drawn.encode(strokes))
    step = 2 * drawn.BOX / (drawn.LEVELS - 1)
    assert [len(s) for s in back] == [3, 1]
    for stroke, again in zip(strokes, back):
        for p, q in zip(stroke, again):
            assert abs(p[0] - q[0]) <= step / 2 + 1e-12 and abs(p[1] - q[1]) <= step / 2 + 1e-12
    assert drawn.encode(back) == drawn.encode(strokes)  # a code is a fixed point
    assert drawn.decode("") == []


def test_points_outside_the_box_are_clamped_to_its_edge():
    (stroke,) = drawn.decode(drawn.encode([[(-50.0, 7.0)]]))
    assert stroke == [(-drawn.BOX, drawn.BOX)]


def test_the_largest_drawing_fits_a_link_under_2000_characters():
    per_stroke = drawn.MAX_POINTS // drawn.MAX_STROKES
    strokes = [[(k * 0.1 - 3, i * 0.01) for i in range(per_stroke)] for k in range(drawn.MAX_STROKES)]
    strokes[-1] += [(0.0, 0.0)] * (drawn.MAX_POINTS - per_stroke * drawn.MAX_STROKES)
    code = drawn.encode(strokes)
    assert len(code) == drawn.MAX_CODE_CHARS
    url = links.build("http://class.example/?view=present", settings={"data": "drawn", "drawn_points": code},
                      base=GANConfig(), lang="zh-TW")
    assert len(url) < 2000, len(url)
    with pytest.raises(drawn.DrawingError) as error:
        drawn.encode(strokes + [[(0.0, 0.0)]])
    assert error.value.key == "draw_err_strokes"
    with pytest.raises(drawn.DrawingError) as error:
        drawn.encode([s + [(1.0, 1.0)] for s in strokes])
    assert error.value.key == "draw_err_points"


@pytest.mark.parametrize("code, words", [
    ("AAA", "cut short"), ("AAAA..AAAA", "cut short"), ("AAAA.", "cut short"), ("AA A", "only letters"),
    ("AAAA<b>", "only letters"), ("A" * (drawn.MAX_CODE_CHARS + 4), "at most"),
    (".".join(["AAAA"] * (drawn.MAX_STROKES + 1)), "strokes"), (42, "must be text"),
])
def test_a_broken_code_is_refused_in_plain_words(code, words):
    with pytest.raises(drawn.DrawingError) as error:
        drawn.decode(code)
    assert words in str(error.value) and len(str(error.value)) < 200


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet=drawn.ALPHABET + ".", max_size=120),
                 st.text(min_size=1500, max_size=2200, alphabet=drawn.ALPHABET + ".")))
def test_any_text_is_a_drawing_within_the_bounds_or_a_drawing_error(text):
    try:
        strokes = drawn.decode(text)
    except drawn.DrawingError as error:
        assert error.key.startswith("draw_err_") and len(str(error)) < 200
    else:
        assert len(strokes) <= drawn.MAX_STROKES and sum(map(len, strokes)) <= drawn.MAX_POINTS
        assert all(-drawn.BOX <= c <= drawn.BOX for s in strokes for p in s for c in p)
        assert drawn.encode(strokes) == text


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=40),
                min_size=1, max_size=12))
def test_any_json_drawing_is_normalised_into_the_box_or_refused(strokes):
    text = json.dumps({"strokes": [[list(p) for p in s] for s in strokes]})
    try:
        code = drawn.from_json(text)
    except drawn.DrawingError as error:
        assert error.key in ("draw_err_points", "draw_err_strokes")
        return
    points = [p for s in drawn.decode(code) for p in s]
    assert len(drawn.decode(code)) == len(strokes)
    half = max(max(abs(x), abs(y)) for x, y in points)
    assert half <= drawn.FIT_HALF_EXTENT + 0.01  # centred on the box, larger half-extent 2.5


def test_normalising_centres_and_scales_a_drawing_and_keeps_its_shape():
    text = json.dumps({"points": [[100, 200], [300, 200], [200, 250]]})
    strokes = drawn.decode(drawn.from_json(text))
    xs = [s[0][0] for s in strokes]
    ys = [s[0][1] for s in strokes]
    assert min(xs) == pytest.approx(-2.5, abs=0.002) and max(xs) == pytest.approx(2.5, abs=0.002)
    # 50 high against 200 wide: the same 1:4 after scaling
    assert min(ys) == pytest.approx(-0.625, abs=0.002) and max(ys) == pytest.approx(0.625, abs=0.002)
    (only,) = drawn.decode(drawn.from_json(json.dumps({"points": [[7, 7]]})))  # one point: to the centre
    assert max(abs(c) for c in only[0]) < 0.002


@pytest.mark.parametrize("text, key", [
    ("not json", "draw_err_json"), ("[]", "draw_err_empty"), ('{"strokes": []}', "draw_err_empty"),
    ('{"lines": []}', "draw_err_shape"), ('[[1, "a"]]', "draw_err_numbers"), ("[[1, 2, 3]]", "draw_err_shape"),
    ('{"points": [[1e999, 0]]}', "draw_err_numbers"), ('[[[true, 0]]]', "draw_err_numbers"),
    ("[" * 100_000, "draw_err_too_big"), (json.dumps({"points": [[i, i] for i in range(20_001)]}), "draw_err_too_big"),
    (json.dumps({"strokes": [[[i, (i % 2) * 50] for i in range(500)]]}), "draw_err_points"),
    (json.dumps({"points": [[i, i % 7] for i in range(40)]}), "draw_err_strokes"),
], ids=lambda value: value[:30] if isinstance(value, str) else None)
def test_odd_json_drawings_are_refused_with_a_key_the_page_translates(text, key):
    from ganapp.web.text import TEXT

    with pytest.raises(drawn.DrawingError) as error:
        drawn.from_json(text)
    assert error.value.key == key and key in TEXT


def test_simplifying_keeps_a_stroke_within_its_tolerance_and_short_wobbles_become_dots():
    line = [(x / 100, 0.001 * math.sin(x)) for x in range(-200, 201)]
    simple = drawn.simplify(line)
    assert len(simple) == 2 and simple[0] == line[0] and simple[-1] == line[-1]
    wave = [(x / 50, math.sin(x / 10)) for x in range(-100, 101)]
    simple = drawn.simplify(wave)
    assert 5 < len(simple) < 60
    from ganapp.drawn import _segment_distance
    for p in wave:  # every original point within the tolerance of the simplified polyline
        assert min(_segment_distance(p, a, b) for a, b in zip(simple, simple[1:])) <= drawn.SIMPLIFY_TOLERANCE + 1e-9
    assert drawn.simplify([(1.0, 1.0), (1.01, 1.02), (1.0, 1.01)]) == [(1.005, 1.01)]


def test_adding_strokes_fills_the_budget_then_refuses_and_keeps_the_drawing():
    code = ""
    scribble = [(math.cos(t / 3) * 2.8, math.sin(t / 7) * 2.8) for t in range(600)]
    refused = None
    for _ in range(40):
        try:
            code = drawn.add_stroke(code, scribble)
        except drawn.DrawingError as error:
            refused = error
            break
    assert refused is not None and refused.key in ("draw_err_points", "draw_err_strokes")
    strokes, points = drawn.describe(code)
    assert points <= drawn.MAX_POINTS and strokes <= drawn.MAX_STROKES
    assert drawn.without_last(code) == drawn.encode(drawn.decode(code)[:-1])


# ------------------------------------------------------------------ sampling
def test_the_pool_lies_on_the_strokes_with_equal_weight_per_stroke():
    dataset = data.load_dataset("drawn", seed=3, drawing=MOONS)
    assert dataset.data.shape == (data.TWO_D_POOL_SIZE, 2) and dataset.data.dtype == torch.float32
    counts = torch.bincount(dataset.labels).numpy()
    assert len(counts) == 2 and abs(counts[0] - counts[1]) < 0.05 * len(dataset)
    _, distance = metrics.distance_to_strokes(dataset.data.numpy(), dataset.strokes)
    # Gaussian ink of std 0.05 in 2-D: the distance to the line is |N(0, 0.05)| or less.
    assert np.mean(distance <= 3 * drawn.INK_STD) > 0.99
    assert np.median(distance) < drawn.INK_STD
    again = data.load_dataset("drawn", seed=3, drawing=MOONS)
    other = data.load_dataset("drawn", seed=3, split="test", drawing=MOONS)
    assert torch.equal(again.data, dataset.data) and not torch.equal(other.data, dataset.data)
    assert not torch.equal(data.load_dataset("drawn", seed=4, drawing=MOONS).data, dataset.data)
    assert torch.equal(other.data, data.load_dataset("drawn", seed=3, split="test", drawing=MOONS).data)


def test_points_spread_evenly_along_a_stroke_by_length():
    stroke = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 3.0]])  # lengths 1 and 3
    points = data.point_along(stroke, np.linspace(0, 1, 4001))
    on_first = (points[:, 1] == 0) & (points[:, 0] < 1)
    assert abs(on_first.mean() - 0.25) < 0.01
    assert np.allclose(data.point_along(np.array([[0.5, 0.5]]), np.array([0.3, 0.9])), 0.5)


def test_the_drawn_set_has_the_scale_of_the_built_in_sets():
    ring = data.load_dataset("drawn", drawing=RING).data
    radius = ring.norm(dim=1)
    assert abs(float(radius.mean()) - data.RING8_RADIUS) < 0.01  # the "8 dots" shape is ring8's circle
    assert float(ring.abs().max()) < drawn.BOX + 0.5


def test_an_empty_or_broken_drawing_is_a_data_error():
    with pytest.raises(data.DataError, match="empty"):
        data.load_dataset("drawn", drawing="")
    with pytest.raises(data.DataError, match="cannot be used"):
        data.load_dataset("drawn", drawing="AA")


# ------------------------------------------------------------------ config and budget
def test_the_config_needs_a_valid_drawing_with_drawn_and_none_without():
    config = GANConfig(data="drawn", drawn_points=RING)
    assert GANConfig.from_json(config.to_json()) == config and not config.is_image
    for changes, words in [(dict(data="drawn"), "needs a drawing"),
                           (dict(data="ring8", drawn_points=RING), "only used with data 'drawn'"),
                           (dict(data="drawn", drawn_points="AAA"), "drawn_points: a drawing's stroke is cut short"),
                           (dict(data="drawn", drawn_points=["AAAA"]), "drawn_points must be a text")]:
        with pytest.raises(ConfigError) as error:
            GANConfig(**changes)
        assert words in str(error.value) and len(str(error.value)) <= 300


def test_budget_bounds_a_drawn_run_like_the_other_2d_sets(tmp_path):
    config = GANConfig(data="drawn", drawn_points=drawn.encode([[(0.0, 0.0)]] * 1 + [[(x / 50, 1.0) for x in
                                                                                     range(-100, 100, 3)]]),
                       steps=40, log_every=5, hidden_dim=24)
    needs = budget.estimate(config)
    assert needs.parameters == budget.estimate(config.replace(data="ring8", drawn_points="")).parameters
    trainer = Trainer(config)
    trainer.train()
    path = save_checkpoint(trainer, tmp_path / "c.safetensors")
    assert path.stat().st_size <= needs.checkpoint_bytes


def test_the_server_limits_check_a_drawn_config():
    from ganapp.server.limits import LimitError, Limits

    limits = Limits(max_steps=100)
    limits.check_config(GANConfig(data="drawn", drawn_points=RING, steps=100))
    with pytest.raises(LimitError):
        limits.check_config(GANConfig(data="drawn", drawn_points=RING, steps=101))


# ------------------------------------------------------------------ metrics
def test_metrics_take_the_strokes_as_the_modes():
    strokes = [np.array([[0.0, 0.0]]), np.array([[-2.0, -2.0], [2.0, -2.0]])]
    on_dot = np.zeros((30, 2))
    on_line = np.column_stack([np.linspace(-2, 2, 10), np.full(10, -2.0)])
    far = np.array([[0.0, 2.5]])
    measured = metrics.drawn_metrics(np.vstack([on_dot, on_line, far]), strokes, drawn.INK_STD)
    assert measured["modes_covered"] == 2 and measured["mode_counts"] == [30, 10]
    assert measured["high_quality"] == pytest.approx(100 * 40 / 41)
    p = np.array([0.75, 0.25])
    assert measured["mode_kl"] == pytest.approx(float((p * np.log(p * 2)).sum()))
    index, distance = metrics.distance_to_strokes(np.array([[0.5, -1.2], [3.0, -2.0], [0.3, 0.4]]), strokes)
    assert list(index) == [1, 1, 0] and np.allclose(distance, [0.8, 1.0, 0.5])
    collapsed = metrics.drawn_metrics(np.zeros((50, 2)), strokes, drawn.INK_STD)
    assert collapsed["modes_covered"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(2))


def test_a_drawn_run_is_measured_and_warned_about_a_collapse():
    config = GANConfig(data="drawn", drawn_points=RING, steps=20, log_every=10, metrics_every=20, hidden_dim=16)
    trainer = Trainer(config)
    evaluate = metrics.evaluator_for(trainer)
    measured = evaluate(trainer)
    assert set(measured) >= {"modes_covered", "high_quality", "mode_kl", "nn_distance", "real_nn_distance"}
    assert len(measured["histogram"]) == 8 and measured["histogram_labels"][0] == "1"
    assert measured["real_nn_distance"] < 0.1  # held-out points of the drawing lie on it
    assert 0 <= measured["modes_covered"] <= 8
    if measured["modes_covered"] < 4:
        assert "strokes" in measured["warning"]


# ------------------------------------------------------------------ checkpoint
def test_a_checkpoint_of_a_drawn_run_continues_on_the_same_drawing(tmp_path):
    config = GANConfig(data="drawn", drawn_points=MOONS, steps=40, log_every=10, hidden_dim=16)
    straight = Trainer(config)
    straight.train()
    first = Trainer(config.replace(steps=20))
    first.train()
    path = save_checkpoint(first, tmp_path / "drawn.safetensors")
    saved, _, meta = load_checkpoint(path)
    assert saved.drawn_points == MOONS and meta["config"]["drawn_points"] == MOONS
    resumed = trainer_from_checkpoint(path, steps=40)
    assert torch.equal(resumed.dataset.data, first.dataset.data)
    resumed.train()
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in straight.history]


def test_a_checkpoint_with_a_damaged_drawing_is_refused_without_unpickling(tmp_path):
    config = GANConfig(data="drawn", drawn_points=RING, steps=10, log_every=5, hidden_dim=8)
    trainer = Trainer(config)
    trainer.train()
    good = save_checkpoint(trainer, tmp_path / "good.safetensors")
    _, _, meta = load_checkpoint(good)
    for drawing, words in [("AAAA<script>", "only letters"), ("", "needs a drawing"), (["AAAA"], "must be a text")]:
        raw = json.dumps({**meta, "config": {**meta["config"], "drawn_points": drawing}})
        with pytest.raises(CheckpointError) as error:
            check_metadata(raw, name="bad.safetensors")
        assert "bad.safetensors has an invalid config" in str(error.value) and words in str(error.value)


# ------------------------------------------------------------------ link
def test_a_link_carries_the_drawing_and_a_broken_one_is_set_aside():
    settings_ = {"data": "drawn", "drawn_points": MOONS, "steps": 3000}
    url = links.build("http://x/", settings=settings_, base=GANConfig(), lang="en")
    link = links.parse(url.split("?", 1)[1], set(), set())
    assert link.settings["drawn_points"] == MOONS and link.settings["data"] == "drawn" and not link.ignored
    broken = links.parse("data=drawn&drawn_points=AAA%3Cb%3E&steps=300", set(), set())
    assert broken.settings == {"data": "drawn", "steps": 300}
    assert broken.ignored == [("drawn_points", "draw_link_broken")]
    # With another data set the canvas may still hold a drawing; the link leaves it out.
    url = links.build("http://x/", settings={**settings_, "data": "ring8"}, base=GANConfig(), lang="en")
    assert "drawn_points" not in url


# ------------------------------------------------------------------ command line
@pytest.mark.slow  # subprocess runs of python -m ganapp
def test_the_command_line_trains_on_a_json_drawing_and_refuses_a_bad_one(tmp_path):
    drawing = tmp_path / "drawing.json"
    drawing.write_text(json.dumps({"strokes": [[[0, 0], [10, 10], [20, 0]]], "points": [[50, 50]]}))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "ganapp", "train", "--data", "drawn", "--drawn-points", str(drawing),
                           "--steps", "20", "--log-every", "10", "--metrics-every", "20", "--hidden-dim", "16",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    config = GANConfig.from_json((out / "config.json").read_text())
    assert config.data == "drawn" and drawn.stroke_count(config.drawn_points) == 2
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "modes_covered" in header and "nn_distance" in header
    bad = tmp_path / "bad.json"
    bad.write_text('{"points": [[0, "zero"]]}')
    for flags, words in [(["--drawn-points", str(bad)], "bad.json is not a usable drawing"),
                         (["--drawn-points", str(tmp_path / "none.json")], "is not a file"),
                         ([], "needs a drawing")]:
        done = subprocess.run([sys.executable, "-m", "ganapp", "train", "--data", "drawn", *flags,
                               "--out", str(tmp_path / "no")], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and words in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


# ------------------------------------------------------------------ the pad's handlers (no browser)
def test_the_pads_handlers_keep_the_drawing_and_say_what_is_wrong_in_both_languages():
    from ganapp.web import draw

    code, line = draw.add_stroke(json.dumps({"strokes": [[[0, 0], [1, 1], [2, 0]], [[-1, -1]]]}), "", "en")
    assert drawn.describe(code) == (2, 4) and "2 strokes and dots" in line
    for bad, english, chinese in [("{", "not valid JSON", "不是有效的 JSON"),
                                  (json.dumps({"strokes": [[[0, "x"]]]}), "not a pair of numbers", "不是一對數字"),
                                  (json.dumps({"strokes": "<b>"}), "strokes are lists", "每一筆應該是")]:
        for lang, words in (("en", english), ("zh-TW", chinese)):
            kept, said = draw.add_stroke(bad, code, lang)
            assert kept == code and words in said and "<b>" not in said  # nothing lost, nothing rendered
    full = drawn.encode([[(k / 10, 0.0)] for k in range(drawn.MAX_STROKES)])
    kept, said = draw.add_stroke(json.dumps({"strokes": [[[2, 2]]]}), full, "zh-TW")
    assert kept == full and "最多 32 筆" in said
    # Two strokes in one request, the second beyond the budget: the first is kept.
    nearly = drawn.encode([[(k / 10, 0.0)] for k in range(drawn.MAX_STROKES - 1)])
    kept, said = draw.add_stroke(json.dumps({"strokes": [[[2, 2]], [[2.5, 2.5]]]}), nearly, "en")
    assert drawn.stroke_count(kept) == drawn.MAX_STROKES and "at most 32" in said
    assert draw.undo(code, "en")[0] == drawn.encode(drawn.decode(code)[:1])
    assert draw.clear("en")[0] == "" and "Nothing drawn yet" in draw.clear("en")[1]
    assert draw.use_shape("smile")("en")[0] == drawn.shape("smile")
    assert "damaged" in draw.status_html("AAA", "en") and "損壞" in draw.status_html("AAA", "zh-TW")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values.map(json.dumps), json_values.map(lambda v: json.dumps({"strokes": v})), st.text(max_size=80)))
def test_whatever_the_canvas_sends_the_drawing_so_far_is_kept(sent):
    from ganapp.web import draw

    before = MOONS
    code, line = draw.add_stroke(sent, before, "zh-TW")
    if code is not None and not isinstance(code, str):  # gr.skip(): nothing to do
        return
    strokes = drawn.decode(code)
    assert strokes[:2] == drawn.decode(before)  # nothing lost
    assert len(strokes) <= drawn.MAX_STROKES and isinstance(line, str) and "<script" not in line


def test_a_huge_stroke_is_thinned_before_simplifying_so_its_cost_is_bounded():
    zigzag = [(i * 0.0003 - 3, (i % 2) * 0.5) for i in range(20_000)]
    thinned = drawn._thin(zigzag, drawn.SIMPLIFY_TOLERANCE)
    assert len(thinned) == drawn.MAX_RDP_POINTS and thinned[0] == zigzag[0] and thinned[-1] == zigzag[-1]
    dense = [(i * 1e-5, 0.0) for i in range(1000)] + [(1.0, 1.0)]
    assert drawn._thin(dense, drawn.SIMPLIFY_TOLERANCE) == [dense[0], dense[-1]]  # closer than 0.01: dropped
    code = drawn.add_stroke("", zigzag)
    assert drawn.describe(code)[1] <= drawn.MAX_POINTS


def test_a_drawing_saved_from_the_page_comes_back_as_the_same_code():
    from urllib.parse import unquote

    from ganapp.web import draw

    per_stroke = drawn.MAX_POINTS // drawn.MAX_STROKES
    largest = drawn.encode([[(k * 0.18 - 2.9, i * 0.07 - 2.9) for i in range(per_stroke)]
                            for k in range(drawn.MAX_STROKES)])
    for code in (MOONS, RING, drawn.shape("smile"), largest):
        assert drawn.from_json(drawn.to_json(code)) == code
        line = draw.status_html(code, "en")
        href = re.search(r'href="data:application/json;charset=utf-8,([^"]+)"', line).group(1)
        assert drawn.from_json(unquote(href)) == code and "Save as JSON" in line
    assert "draw-save" not in draw.status_html("", "en")  # nothing drawn: nothing to save
