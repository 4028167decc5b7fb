"""The time-lapse of the views inside the game (ganapp.web.timelapse, ganapp.web.export) and
the presets that use the lenses (ganapp.presets.PRESET_VIEWS).

- KeptViews: views kept only for kept pictures' steps, bounded in count and bytes, thinned
  as the pictures are;
- a run trained with views on (a real job): replaying step s shows the views of step s,
  not the latest; the GIF with views differs from the one without, and its frames carry
  the layers (composited as the page stacks them) and the lenses;
- each lens preset: a valid config whose technique draws the lens it names, a note in both
  languages, and opening it (the handler, and a link) switches its views on.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ganapp import games
from ganapp.config import GANConfig
from ganapp.presets import PRESET_NOTES, PRESET_NOTES_ZH, PRESET_TITLES_ZH, PRESET_VIEWS, PRESETS, preset_config
from ganapp.render_inside import rgba_png
from ganapp.web import export, safety, timelapse

LENS_OF = {"mbd": "minibatch_discrimination", "vbn": "virtual_batch_norm", "ls": "label_smoothing",
           "fm": "feature_matching"}


def _png(rgb=(255, 255, 255), size=(40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _run(run_id="r1", owner="o"):
    return SimpleNamespace(id=run_id, owner=owner)


def _views(step: int, size: int = 100) -> tuple:
    return (step, {"heatmap": bytes(size), "mbd": bytes(size)}, {"d_min": 0.1})


# ---------------------------------------------------------------------------- KeptViews


def test_views_are_kept_only_for_kept_pictures_and_forgotten_with_them():
    kept = timelapse.KeptViews(runs=2, per_run=10)
    run = _run()
    kept.keep(run, _views(100), {0, 50})
    assert kept.at(run, 100) is None  # no picture of step 100 is kept: its views are no use
    kept.keep(run, _views(50), {0, 50})
    kept.keep(run, _views(0), {0, 50})  # late, older: kept in step order
    assert list(kept.all(run)) == [0, 50] and kept.at(run, 50)[0] == 50
    kept.keep(run, _views(50, size=7), {0, 50})  # the same step again: the first is kept
    assert len(kept.at(run, 50)[1]["heatmap"]) == 100
    kept.keep(run, None, {50})  # the picture of step 0 was thinned away: so are its views
    assert list(kept.all(run)) == [50]
    for other in ("r2", "r3"):  # at most `runs` runs, the oldest forgotten
        kept.keep(_run(other), _views(0), {0})
    assert kept.all(run) == {} and set(kept.all(_run("r3"))) == {0}


def test_views_are_bounded_in_count_and_in_bytes_thinning_the_oldest_half():
    kept = timelapse.KeptViews(runs=4, per_run=8, bytes_per_run=10_000)
    run = _run()
    steps = set(range(0, 2000, 10))
    for step in range(0, 200, 10):
        kept.keep(run, _views(step), steps)
    got = list(kept.all(run))
    assert len(got) <= 8 and got[0] == 0 and got[-1] == 190, got  # the first and the newest stay
    big = _run("big")
    for step in range(0, 200, 10):
        kept.keep(big, _views(step, size=2_000), steps)  # 4 KB a step: 2 steps at most in 10,000 bytes
    assert kept.bytes() <= 8 * 200 + 10_000 and list(kept.all(big))[-1] == 190
    assert sum(timelapse.size_of(v) for v in kept.all(big).values()) <= 10_000


def test_a_run_shown_without_a_pair_keeps_its_views_from_the_polls(tmp_path):
    """No listener for a run that is not watched: each poll keeps the latest picture and the
    latest views; views that arrive after the poll that kept their picture are kept by the next."""
    from ganapp.server.manager import Run
    from ganapp.web.core import GanApp

    listeners = []
    jobs = SimpleNamespace(add_picture_listener=listeners.append, add_inside_listener=listeners.append)
    app = GanApp(jobs)
    run = Run(id="solo", owner="o", name="solo", kind="train", config=GANConfig(data="ring8"), folder=tmp_path,
              state="running")
    for step in (0, 100, 200):
        run.sample = (step, _png((step, step, step)))  # the pump: the picture first ...
        run.picture, run.picture_step = run.sample[1], step
        app.keep_picture(run)  # ... a poll between the picture and its views ...
        assert app.views_kept.at(run, step) is None
        run.inside = _views(step)  # ... the views (drawn after the picture is sent)
        app.keep_picture(run)  # ... the next poll
        assert app.views_kept.at(run, step) is run.inside
    assert list(app.views_kept.all(run)) == [0, 100, 200] == [s for s, _ in app.kept_pictures(run)]
    html = timelapse.pane_html(app, run, 150, "en")[1]
    assert 'data-step="100"' in html and "at step 100" in html


def test_the_worst_case_memory_stated_in_the_module_is_what_the_bounds_give():
    from ganapp.web.core import PICTURES_KEPT, RUNS_WITH_PICTURES

    assert timelapse.VIEWS_BYTES_KEPT == 8 * 2**20 and RUNS_WITH_PICTURES == 32 and PICTURES_KEPT == 200
    assert "32 x 8 MiB = 256 MiB" in timelapse.__doc__


# ---------------------------------------------------------------------------- the GIF's frames


def _heatmap_png(size=(40, 40), rgba=(40, 120, 200, 128)) -> bytes:
    return rgba_png(np.broadcast_to(np.array(rgba, np.uint8), (*size[::-1], 4)).copy())


def test_the_heatmap_is_multiplied_in_and_the_arrows_drawn_over_as_the_page_does():
    picture = _png((200, 100, 50))
    arrows = np.zeros((40, 40, 4), np.uint8)
    arrows[10, 10] = (255, 0, 0, 255)
    views = {"heatmap": _heatmap_png(), "arrows": rgba_png(arrows)}
    out = np.asarray(export.composite(picture, views)).astype(int)
    alpha = 128 / 255  # CSS multiply over an opaque picture: (1 - a) base + a base * layer / 255
    expected = [round((1 - alpha) * b + alpha * b * c / 255) for b, c in zip((200, 100, 50), (40, 120, 200))]
    assert np.abs(out[20, 20] - expected).max() <= 1
    assert tuple(out[10, 10]) == (255, 0, 0)
    assert np.array_equal(np.asarray(export.composite(picture, views, layers=False)),
                          np.asarray(Image.open(io.BytesIO(picture)).convert("RGB")))


def test_frames_with_views_carry_each_pictures_own_steps_layers_and_lenses(tmp_path):
    full = (export.PANE, export.PANE)
    side_a = [(0, _png((255, 255, 255), full)), (100, _png((250, 250, 250), full))]
    side_b = [(0, _png((255, 255, 255), full)), (50, _png((240, 240, 240), full))]
    frames = export.pair_frames_steps(side_a, side_b)
    assert [(s, a[0], b[0]) for s, a, b in frames] == [(0, 0, 0), (50, 0, 50), (100, 100, 50)]
    lens = _png((0, 160, 0), size=(420, 100))
    kept_a = {0: (0, {"heatmap": _heatmap_png(full, (255, 0, 0, 255)), "mbd": lens}, {}),
              100: (100, {"heatmap": _heatmap_png(full, (0, 0, 255, 255)), "mbd": lens}, {})}
    kept_b = {50: (50, {"heatmap": _heatmap_png(full, (0, 255, 0, 255))}, {})}
    plain = export.pair_gif(frames, ("a", "b"), str, tmp_path / "plain.gif")
    layered = export.pair_gif(frames, ("a", "b"), str, tmp_path / "layers.gif", views=(kept_a, kept_b), layers=True)
    both = export.pair_gif(frames, ("a", "b"), str, tmp_path / "both.gif", views=(kept_a, kept_b), layers=True,
                           lenses=True)
    assert plain.read_bytes() != layered.read_bytes()

    def frame(path, index):
        with Image.open(path) as gif:
            gif.seek(index)
            return np.asarray(gif.convert("RGB")).astype(int)

    centre_a = (export.CAPTION + export.PANE // 2, export.PANE // 2)
    centre_b = (centre_a[0], export.PANE + 12 + export.PANE // 2)
    red, blue = frame(layered, 0)[centre_a], frame(layered, 2)[centre_a]  # A's step 0 and step 100 views
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60, (red, blue)
    assert frame(layered, 0)[centre_b].min() > 200  # B has no views of step 0: its picture as drawn
    assert frame(layered, 1)[centre_b][1] > 200 and frame(layered, 1)[centre_b][0] < 60  # B's step 50 views
    assert frame(plain, 0)[centre_a].min() > 200  # without views: the pictures only
    with Image.open(both) as gif, Image.open(plain) as small:
        assert gif.size[1] > small.size[1] and gif.size[0] == small.size[0]  # the lenses under the pictures
    under = frame(both, 0)[export.PANE + export.CAPTION + 8 + 20, 100]
    assert under[1] > 120 and under[0] < 60, under  # A's closeness lens (green here) under its picture


# ---------------------------------------------------------------------------- a real run, replayed

TRAINED = {"data": "ring8", "batch_size": 32, "hidden_dim": 32, "log_every": 10, "sample_every": 50,
           "metrics_every": 0, "steps": 400, "minibatch_discrimination": True}


def _data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(found) for found in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.mark.slow
def test_replaying_a_step_shows_that_steps_views_and_the_gif_can_include_them(server, manager):
    app, handlers, ui = server.app, server.app.handlers, server.app.ui
    owner = manager.issue_token("test")
    runs = [manager.submit(owner, GANConfig(**{**TRAINED, "seed": seed}), every_picture=True) for seed in (0, 1)]
    for run in runs:
        while run.active:  # a pair on screen (a page re-watches it at each poll): every picture and view kept
            app.watch(*runs)
            manager.wait(owner, run.id, timeout_s=1)
        assert run.state == "finished", run.reason
    kept = {run.id: [step for step, _ in app.kept_pictures(run)] for run in runs}
    assert all(steps[-1] == 400 and 100 in steps for steps in kept.values()), kept
    views_kept = {run.id: app.views_kept.all(run) for run in runs}
    assert all(set(v) == set(kept[r]) for r, v in views_kept.items()), \
        [(sorted(set(v) ^ set(kept[r])), kept[r]) for r, v in views_kept.items()]

    latest = runs[0].inside
    assert latest[0] == 400
    asked = 125  # the slider's step: each side shows its latest picture at or before it, with that step's views
    replayed = handlers.replay(owner, runs[0].id, runs[1].id, asked, "en")
    for run, component in ((runs[0], ui.compare_picture_a), (runs[1], ui.compare_picture_b)):
        html = replayed[component]
        step = max(s for s in kept[run.id] if s <= asked)
        assert f'data-step="{step}"' in html and f"at step {step}" in html and "at step 400" not in html
        shown = _data_uris(html)
        views = app.views_kept.at(run, step)[1]
        assert views["heatmap"] in shown and views["arrows"] in shown and views["mbd"] in shown
        assert run.inside[1]["heatmap"] not in shown and run.inside[1]["mbd"] not in shown  # not the latest
        assert dict(app.kept_pictures(run))[step] in shown  # with the sample picture of that step
    assert 'id="lens-mbd-replay-a"' in replayed[ui.compare_picture_a]
    assert 'id="lens-mbd-replay-b"' in replayed[ui.compare_picture_b]
    single = handlers.replay(owner, runs[0].id, None, 250, "zh-TW")  # one run replayed alone, in Chinese
    step = max(s for s in kept[runs[0].id] if s <= 250)
    assert f'data-step="{step}"' in single[ui.compare_picture_a] and f"第 {step} 步" in single[ui.compare_picture_a]
    assert app.views_kept.at(runs[0], step)[1]["heatmap"] in _data_uris(single[ui.compare_picture_a])

    def gif(options) -> Path:
        download = handlers.export_pair(owner, runs[0].id, runs[1].id, "en", options)
        return Path(download.value["path"] if isinstance(download.value, dict) else download.value)

    plain, layered, everything = gif([]), gif(["layers"]), gif(["layers", "lenses"])
    assert len({plain, layered, everything}) == 3 and plain.read_bytes() != layered.read_bytes()
    with Image.open(plain) as a, Image.open(layered) as b, Image.open(everything) as c:
        assert a.n_frames == b.n_frames == c.n_frames and a.size == b.size and c.size[1] > a.size[1]
        a.seek(a.n_frames - 1)
        b.seek(b.n_frames - 1)
        picture_a = np.asarray(a.convert("RGB"))[export.CAPTION:export.CAPTION + export.PANE, :export.PANE]
        picture_b = np.asarray(b.convert("RGB"))[export.CAPTION:export.CAPTION + export.PANE, :export.PANE]
    # The last frame's left picture with its views composited as the page stacks them.
    expected = export.composite(dict(app.kept_pictures(runs[0]))[400], runs[0].inside[1])
    expected.thumbnail((export.PANE, export.PANE))
    left = (export.PANE - expected.width) // 2
    drawn = picture_b[:expected.height, left:left + expected.width].astype(int)
    assert np.abs(drawn - np.asarray(expected).astype(int)).mean() < 6  # GIF colours aside
    assert np.abs(picture_a.astype(int) - picture_b.astype(int)).mean() > 3  # the layers are there


# ---------------------------------------------------------------------------- lens presets


@pytest.mark.parametrize("name", list(PRESET_VIEWS))
def test_each_lens_preset_is_valid_and_its_technique_draws_the_lens_it_names(name):
    assert name in PRESETS and name.endswith("(see inside)")
    config = preset_config(name)
    partner = name.split(":")[0] + ": vanilla"
    assert partner in PRESETS and config.data == "ring8"
    for lens in PRESET_VIEWS[name]["lenses"]:
        assert getattr(config, LENS_OF[lens]) not in (False, None), (name, lens)
    assert set(PRESET_VIEWS[name]["layers"]) <= {"heatmap", "arrows"}
    for table in (PRESET_NOTES, PRESET_NOTES_ZH):
        assert 40 < len(table[name]) < 700, name
    assert PRESET_TITLES_ZH[name] and re.search(r"[\u4e00-\u9fff]", PRESET_NOTES_ZH[name])


def test_the_lens_presets_cover_the_techniques_the_issue_names():
    lenses = {lens for wanted in PRESET_VIEWS.values() for lens in wanted["lenses"]}
    assert {"mbd", "vbn", "ls"} <= lenses
    assert any(wanted["games"] for wanted in PRESET_VIEWS.values())
    orbit = next(n for n, w in PRESET_VIEWS.items() if w["games"])
    assert preset_config(orbit).historical_averaging != "off"


def test_the_orbit_presets_note_quotes_what_the_games_view_shows_at_its_defaults():
    """The historical averaging preset points at the games view; the numbers it quotes are
    the games' at the section's defaults."""
    name = next(n for n, w in PRESET_VIEWS.items() if w["games"])
    play = games.play("xy")
    plain, averaged = play.plain.final_distance, play.averaged.final_distance
    assert f"{np.hypot(1, 1):.2f}" in PRESET_NOTES[name] and f"{plain:.1f}" in PRESET_NOTES[name], plain
    assert f"{averaged:.4f}" in PRESET_NOTES[name], averaged
    assert f"{plain:.1f}" in PRESET_NOTES_ZH[name] and f"{averaged:.4f}" in PRESET_NOTES_ZH[name]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_opening_a_lens_preset_switches_its_views_on(server, lang):
    handlers, ui = server.app.handlers, server.app.ui
    form = server.app.form
    for name, wanted in PRESET_VIEWS.items():
        out = handlers.apply_preset(name, lang)
        for lens in wanted["lenses"]:  # the technique whose lens the preset names is on in the form
            technique = LENS_OF[lens]
            source = form.ls_on if technique == "label_smoothing" else form.fields[technique]
            assert out[source] not in (False, None, "off"), (name, lens, out[source])
        assert out[ui.inside_heatmap]["value"] is True and out[ui.inside_arrows]["value"] is True
        assert (out.get(ui.games.section, {}).get("open") is True) == wanted["games"], name
        notes = PRESET_NOTES_ZH if lang == "zh-TW" else PRESET_NOTES
        assert out[ui.preset_note] == safety.markdown_text(notes[name], limit=2000)
    plain = handlers.apply_preset("ring8: vanilla", lang)
    assert ui.inside_heatmap not in plain and ui.games.section not in plain  # another preset switches nothing


@pytest.mark.slow
def test_a_link_to_a_lens_preset_opens_it_with_its_views_on(server):
    from urllib.parse import quote

    from ganapp.web import links

    name = next(n for n, w in PRESET_VIEWS.items() if w["games"])
    handlers, ui = server.app.handlers, server.app.ui
    link = links.parse(f"preset={quote(name)}", set(PRESETS), set())
    assert link.preset == name
    out: dict = {}
    handlers._fill_from_link(link, "en", out)
    assert out[ui.preset]["value"] == name
    assert out[ui.inside_heatmap]["value"] is True and out[ui.games.section]["open"] is True
