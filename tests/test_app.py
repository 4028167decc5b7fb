"""The app through its real server on loopback: the API with gradio_client, the poll's
economy, and the one mapping between widgets and GANConfig (STYLE habit 9)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from conftest import wait_until
from ganapp.config import ConfigError, GANConfig
from ganapp.presets import PRESETS, preset_config
from ganapp.web import core, views
from ganapp.web.form import ConfigForm

TINY = {"data": "ring8", "batch_size": 32, "hidden_dim": 32, "log_every": 5, "sample_every": 20,
        "metrics_every": 0}


# ------------------------------------------------------------------ widgets <-> config
def _form_values(form: ConfigForm, config: GANConfig) -> dict:
    values = {component: component.value for component in form.components}  # widget defaults
    values.update(form.from_config(config))
    return values


def test_every_offered_config_field_maps_to_a_widget_and_back():
    with gr.Blocks():
        form = ConfigForm(GANConfig(), max_steps=20_000)
    every_field = {f.name for f in dataclasses.fields(GANConfig)}
    assert form.offered_fields() == every_field - set(ConfigForm.NOT_OFFERED)
    everything_on = GANConfig(data="digits", steps=1234, batch_size=48, seed=7, noise_dim=9, hidden_dim=40,
                              lr_generator=2e-4, lr_discriminator=3e-4, beta1=0.3, beta2=0.95,
                              generator_loss="saturating", feature_matching=True, minibatch_discrimination=True,
                              minibatch_kernels=12, minibatch_kernel_dim=4, historical_averaging="exponential",
                              historical_averaging_weight=0.5, historical_averaging_decay=0.9,
                              label_smoothing=0.8, virtual_batch_norm=True, vbn_reference_size=32, log_every=3,
                              sample_every=30, metrics_every=0)
    configs = [GANConfig(), everything_on, everything_on.replace(historical_averaging="uniform"),
               *(preset_config(name) for name in PRESETS)]
    for config in configs:
        assert form.to_config(_form_values(form, config)) == config
    # Each field, changed alone from the defaults, survives the round trip.
    for name, value in {"data": "spiral", "steps": 77, "seed": 5, "lr_generator": 0.01, "label_smoothing": 0.7,
                        "historical_averaging": "uniform", "virtual_batch_norm": True}.items():
        config = GANConfig().replace(**{name: value})
        assert getattr(form.to_config(_form_values(form, config)), name) == value


def test_form_errors_name_the_setting():
    with gr.Blocks():
        form = ConfigForm(GANConfig(), max_steps=20_000)
    values = _form_values(form, GANConfig())
    for name, value, message in (("steps", None, "steps is empty"), ("steps", 2.5, "whole number"),
                                 ("batch_size", 1, "batch_size must be between"),
                                 ("lr_generator", 0, "lr_generator (learning rate) must be > 0")):
        broken = dict(values)
        broken[form.fields[name]] = value
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            form.to_config(broken)


def test_presets_are_valid_and_comparable():
    for name in PRESETS:
        preset_config(name)
    vanilla, mbd = preset_config("ring8: vanilla"), preset_config("ring8: minibatch discrimination")
    assert mbd.replace(minibatch_discrimination=False) == vanilla


# ------------------------------------------------------------------ the API, over HTTP
@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def test_api_start_poll_stop(client):
    token = client.predict(api_name="/new_token")
    started = client.predict(token, {**TINY, "steps": 20_000, "minibatch_discrimination": True}, "api run",
                             api_name="/start_run")
    run_id = started["run_id"]
    assert started["state"] in ("queued", "starting") and started["techniques"] == ["MBD"]

    def poll():
        return client.predict(token, run_id, api_name="/poll_run")

    first = wait_until(lambda: (p := poll())["step"] > 0 and p["samples_count"] > 0 and p, 90, "training to start")
    later = wait_until(lambda: (p := poll())["step"] > first["step"] and p["samples_count"] > first["samples_count"]
                       and p, 30, "the step count and the samples to change")
    assert later["state"] == "running" and later["history"][-1]["step"] <= later["step"]
    assert later["steps_per_second"] > 0
    with_picture = client.predict(token, run_id, True, 50, api_name="/poll_run")
    assert with_picture["samples_png_base64"].startswith("iVBORw0KGgo")  # PNG signature
    assert len(with_picture["history"]) <= 51

    stopped = client.predict(token, run_id, api_name="/stop_run")
    assert stopped["state"] in ("stopping", "stopped")
    final = wait_until(lambda: (p := poll())["state"] == "stopped" and p, 10, "the run to stop")
    assert 0 < final["step"] < 20_000 and "checkpoint" in final["files"]
    listed = client.predict(token, api_name="/list_runs")
    assert [r["run_id"] for r in listed] == [run_id] and listed[0]["state"] == "stopped"
    files = client.predict(token, run_id, api_name="/run_files")
    assert sorted(Path(f).name for f in files) == ["checkpoint.safetensors", "config.json", "metrics.csv",
                                                     "samples.png"]
    assert Path(files[2]).read_text().startswith("step,d_loss,g_loss")


def test_a_second_client_cannot_see_or_stop_the_first_ones_run(client, server):
    owner = client.predict(api_name="/new_token")
    run = client.predict(owner, {**TINY, "steps": 20_000}, "", api_name="/start_run")
    stranger = Client(server.url, verbose=False)
    other = stranger.predict(api_name="/new_token")
    assert other != owner
    assert stranger.predict(other, api_name="/list_runs") == []
    for api_name, args in (("/poll_run", (other, run["run_id"])), ("/stop_run", (other, run["run_id"])),
                           ("/run_files", (other, run["run_id"]))):
        with pytest.raises(Exception, match="you have no run"):
            stranger.predict(*args, api_name=api_name)
    assert client.predict(owner, run["run_id"], api_name="/poll_run")["state"] != "stopped"
    client.predict(owner, run["run_id"], api_name="/stop_run")
    wait_until(lambda: client.predict(owner, run["run_id"], api_name="/poll_run")["state"] == "stopped", 30,
               "the owner's stop")


@pytest.mark.parametrize("config, message", [
    ({"steps": -5}, "steps must be between 1 and"),
    ({"steps": 10**9}, "steps must be between"),
    ({"steps": 20_001}, "this server trains at most 20,000 steps"),
    ({"lr_generator": "fast"}, "lr_generator must be a number"),
    ({"label_smoothing": 0.2}, "label_smoothing is the real target alpha"),
    ({"colour": "blue"}, "unknown setting"),
    ({"data": "cifar10"}, "data must be one of"),
])
def test_bad_settings_come_back_as_clear_errors(client, config, message):
    token = client.predict(api_name="/new_token")
    with pytest.raises(Exception, match=message) as error:
        client.predict(token, config, "", api_name="/start_run")
    assert "Traceback" not in str(error.value)
    assert client.predict(token, api_name="/list_runs") == []  # nothing half-made


def test_a_malformed_token_is_refused(client):
    for token in ("", "abc", "x" * 200):
        with pytest.raises(Exception, match="token"):
            client.predict(token, {"steps": 10}, "", api_name="/start_run")


# ------------------------------------------------------------------ what a poll sends
def _by_name(updates) -> dict:
    named = {}
    for component, value in updates.items():
        key = component.elem_id or type(component).__name__
        named[key] = value
    return named


def test_a_poll_sends_only_what_changed(server, manager):
    app_ = server.app
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 300}))
    manager.wait(owner, run.id, timeout_s=60)
    assert run.state == "finished", run.reason

    page = app_.render(owner, None, None, None, "G loss")  # what a page load draws
    named = _by_name(page)
    assert "ganapp-picture" in named["samples"] and "finished" in named["status"]
    assert "loss curves of" in named["samples-b"] and "data:image/png;base64," in named["samples-b"]
    assert len(named["run-files"]) == 4
    board = named["scoreboard"]  # every ended run of the visitor adds a row, downloadable as CSV
    assert list(board["run"]) == [run.id] and list(board["state"]) == ["finished"]
    assert {"techniques", "final D loss", "final G loss", "seconds"} <= set(board.columns)
    csv_text = Path(named["scoreboard-download"].value["path"]).read_text()
    assert csv_text.startswith("run,name,data,techniques,state,steps") and run.id in csv_text

    def poll(a=None, b=None):
        return app_.tick(owner, None, a, b, "G loss", page[app_.seen["live"]])

    quiet = poll()  # nothing changed: no picture, no plots; the same small texts and stamps
    assert not {"samples", "samples-b"} & set(_by_name(quiet))
    assert [quiet[s] for s in app_.stamps] == [page[s] for s in app_.stamps]  # unchanged: no redraw event

    # Choosing two runs to compare changes one stamp; its own event then draws the comparison once.
    metrics_stamp, compare_stamp, rare_stamp = app_.stamps
    changed = poll(run.id, run.id)
    assert changed[compare_stamp] != page[compare_stamp]
    assert (changed[metrics_stamp], changed[rare_stamp]) == (page[metrics_stamp], page[rare_stamp])
    drawn = app_.on_compare_stamp(owner, run.id, run.id, "G loss", page[app_.seen["compare"]])
    assert set(_by_name(drawn)) >= {"compare-picture-a", "compare-picture-b", "compare-plot"}
    assert app_.on_compare_stamp(owner, run.id, run.id, "G loss", drawn[app_.seen["compare"]]) == gr.skip()

    # Someone else's run id finds nothing: it is looked up among the caller's own runs.
    stranger = manager.issue_token("test")
    theirs = _by_name(app_.render(stranger, run.id, run.id, None, "G loss"))
    assert "no run yet" in theirs["status"] and theirs["compare-picture-a"] == ""


def test_a_poll_while_training_sends_the_live_view_only(server, manager):
    app_ = server.app
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 20_000}))
    try:
        wait_until(lambda: run.picture_count > 0 and run.history, 60, "the run to train")
        page = app_.render(owner, None, None, None, "G loss")
        seen = page[app_.seen["live"]]
        wait_until(lambda: run.picture_count > seen["a"][1] and run.curves_count > seen["curves"], 30,
                   "a new picture and new curves")
        changed = _by_name(app_.tick(owner, None, None, None, "G loss", seen))
        assert {"status", "samples", "samples-b"} <= set(changed)
        assert "metrics-plot-0" not in changed and "runs-table" not in changed  # those have events of their own
    finally:
        manager.stop(owner, run.id)
        manager.wait(owner, run.id, timeout_s=30)


def test_plotted_curves_are_thinned_however_long_the_run():
    rows = [{"step": i, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.5, "d_fake": 0.5, "seconds": i / 100,
             "modes_covered": 8.0} for i in range(1, 20_001)]
    shown = views.thin(rows)
    assert len(shown) <= views.CURVE_POINTS + 1 and shown[-1] is rows[-1] and shown[0] is rows[0]
    frame = views.curve_frame(shown, {"d_loss": "D loss", "g_loss": "G loss"})
    assert len(frame) == 2 * len(shown) and str(frame["value"].dtype) == "float64"
    rows[5]["d_loss"] = float("nan")
    assert len(views.curve_frame(rows[:10], {"d_loss": "D"})) == 9  # NaN would break the plot's JSON
    # A curve with no data yet still gets its legend entry (LinePlot fixes its legend when first drawn).
    assert list(views.curve_frame(rows[:3], {"d_loss": "D", "nothing": "N"})["curve"]) == ["D", "D", "D", "N"]
    assert len(views.metric_frame(rows, "modes_covered")) <= views.CURVE_POINTS + 1
    assert views.metric_columns(rows) == ["modes_covered"]


def test_metric_plots_follow_a_growing_halved_history_scanning_each_row_once():
    """GanApp.frames scans only new rows (a long run's history is thousands of rows); its
    frames must stay what metric_frame makes of the whole history, through new metric rows,
    rows without metrics, a metric that joins later and the halving of a long history."""
    from types import SimpleNamespace

    from ganapp.server import LOSS_COLUMNS

    def row(step):
        out = {"step": step, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.5, "d_fake": 0.5, "seconds": step / 100}
        if step % 4 == 0:
            out["modes_covered"] = float(step % 9)
            if step > 400:
                out["high_quality"] = step / 1e4  # a metric that joins later
            if step % 40 == 0:
                out["modes_covered"] = float("nan")  # measured but not finite: not plotted
        return out

    app_ = core.GanApp.__new__(core.GanApp)
    app_._frames = {}
    run = SimpleNamespace(owner="o", id="r", history=[], metric_rows=0)

    def grow(until):
        for step in range(len(run.history) and run.history[-1]["step"] + 1, until):
            r = row(step)
            run.history.append(r)
            run.metric_rows += len(r) > len(LOSS_COLUMNS)

    for until in (3, 9, 50, 401, 403, 1200):
        grow(until)
        frames = app_.frames(run)["metrics"]
        assert list(frames) == views.metric_columns(run.history)[:core.METRIC_PLOTS]
        for name, frame in frames.items():
            assert frame.equals(views.metric_frame(run.history, name)), (until, name)
    cached = app_.frames(run)
    run.history.append({"step": 1200, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.5, "d_fake": 0.5, "seconds": 12.0})
    assert app_.frames(run) is cached  # a row without metrics redraws nothing
    run.history = run.history[:-1:2] + run.history[-1:]  # the manager halves a long history
    frames = app_.frames(run)["metrics"]
    assert frames is not cached["metrics"]
    for name, frame in frames.items():
        assert frame.equals(views.metric_frame(run.history, name))
    assert app_._frames[("o", "r")][2].scanned == len(run.history)


def test_the_refresh_rate_backs_off_for_a_big_class_and_a_waiting_run(server, manager, monkeypatch):
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 20_000}))

    def timer(token):
        return next(v for k, v in server.app.render(token, None, None, None, "G loss").items()
                    if isinstance(k, gr.Timer))

    try:
        wait_until(lambda: run.state == "running", 60, "the run to start")
        assert timer(owner).value == core.FAST_TICK_S and timer(owner).active
        for page in range(core.FAST_TICK_VISITORS + 1):
            server.app.note_page(f"page {page}")  # other pages, polling
        assert timer(owner).value == core.SLOW_TICK_S
        monkeypatch.setattr(manager.limits, "max_running", 0)  # no free slot: the next run waits
        patient = manager.issue_token("test")
        waiting = manager.submit(patient, GANConfig(**{**TINY, "steps": 10}))
        assert waiting.state == "queued" and timer(patient).value == core.QUEUED_TICK_S and timer(patient).active
        manager.stop(patient, waiting.id)
        assert not timer(patient).active  # nothing left to watch: the page stops polling
    finally:
        manager.stop(owner, run.id)
        manager.wait(owner, run.id, timeout_s=30)


def test_image_metrics_are_shown_beside_real_datas_values():
    line = views.metrics_line({"classifier_score": 7.123, "frechet_distance": 99.28, "real_classifier_score": 9.388,
                             "real_frechet_distance": 23.29})
    assert line == "classifier score: 7.12 (real data: 9.39) · Fréchet distance: 99.3 (real data: 23.3)"
    assert views.metrics_line({"modes_covered": 8.0, "mode_kl": 0.1655}) == \
        "mode unevenness (KL divergence): 0.166 · modes covered: 8"
    assert views.metrics_line({"modes_covered": 8.0}, "zh-TW") == "涵蓋的模式數: 8"


def test_the_comparison_replays_both_runs_at_a_chosen_step(server, manager):
    """Every picture a run on the page drew is kept (bounded), so the slider shows both
    runs at an earlier step; the pair also exports as one GIF."""
    owner = manager.issue_token("test")
    runs = [manager.submit(owner, GANConfig(**{**TINY, "steps": 400, "sample_every": 50, "seed": seed}))
            for seed in (0, 1)]
    server.app.watch(*runs)  # as the page does for a pair on screen
    for run in runs:
        manager.wait(owner, run.id, timeout_s=60)
        assert run.state == "finished", run.reason
    kept = [[step for step, _ in server.app.kept_pictures(run)] for run in runs]
    assert all(len(steps) >= 2 and steps[-1] == 400 for steps in kept), kept
    handlers, ui = server.app.handlers, server.app.ui
    replayed = handlers.replay(owner, runs[0].id, runs[1].id, kept[0][0], "en")
    assert f"at step {kept[0][0]}" in replayed[ui.compare_picture_a]
    assert "at step 400" not in replayed[ui.compare_picture_b]
    download = handlers.export_pair(owner, runs[0].id, runs[1].id, "zh-TW")
    assert Path(download.value["path"] if isinstance(download.value, dict) else download.value).read_bytes()[:3] == b"GIF"
    # Shown side by side: each pane says its step (ring8 keeps views, digits would not), and
    # the overlaid curves keep their names in either language (Gradio 6.31's LinePlot keeps
    # its first legend: curves renamed by a language switch were no longer drawn).
    curves = {}
    for lang in ("en", "zh-TW"):
        out: dict = {}
        handlers.compare_view(owner, runs[0].id, runs[1].id, "G loss", {}, out, lang)
        assert all('data-step="400"' in out[pane] for pane in (ui.compare_picture_a, ui.compare_picture_b))
        plot = out[ui.compare_plot]
        curves[lang] = list(dict.fromkeys(plot.value["data"][i][plot.value["columns"].index("curve")]
                                          for i in range(len(plot.value["data"]))))
        assert set(curves[lang]) <= set(plot.color_map)
        assert plot.color_title == {"en": "run", "zh-TW": "訓練"}[lang]  # not the column's name, "curve"
    assert curves["en"] == curves["zh-TW"] and len(curves["en"]) == 2


def test_a_metric_plot_widens_its_x_axis_with_each_new_measurement(server, manager):
    """A page that drew the metric plots early gets, with every new measurement, the steps
    measured so far as the x range: with the frame alone the plot kept its first range, and
    a finished run's curve stopped halfway (modes 0 at step 1,250 while the text said 1)."""
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 300, "metrics_every": 50}))
    manager.wait(owner, run.id, timeout_s=60)
    handlers, ui = server.app.handlers, server.app.ui
    first: dict = {}
    handlers.metrics_view(run, {}, first, "en")  # the page's first drawing
    seen = first[ui.metrics_seen]
    frames = server.app.frames(run)["metrics"]
    assert frames and seen["rows"] == run.metric_rows
    later: dict = {}
    handlers.metrics_view(run, {**seen, "rows": 2}, later, "en")  # as drawn when two rows had come
    for plot, frame in zip(ui.metric_plots, frames.values()):
        steps = list(frame["step"])
        assert steps[0] == 50 and steps[-1] == 300
        assert isinstance(later[plot], gr.LinePlot) and later[plot].x_lim == [50, 300]
        assert later[plot].value["data"], "the new points come with their range"


def test_a_zh_tw_page_names_preset_runs_by_their_chinese_titles(server, manager):
    """Menus, the comparison's title and the pictures' alt texts name a preset's run as the
    page's language does (they said "ring8: vanilla" on a Chinese page)."""
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 40}), name="ring8: vanilla")
    manager.wait(owner, run.id, timeout_s=60)
    handlers, ui = server.app.handlers, server.app.ui
    for lang, title in (("zh-TW", "ring8：原始 GAN"), ("en", "ring8: vanilla")):
        out: dict = {}
        handlers.rare_view(owner, [run], run, {}, out, lang)
        assert out[ui.compare_a].choices == [(f"{title} [{run.id}]", run.id)]
        out = {}
        handlers.compare_view(owner, run.id, None, "G loss", {}, out, lang)
        side = "左邊：" if lang == "zh-TW" else "Left: "
        assert f"{side}{title} [{run.id}]" in out[ui.compare_plot].label
        assert f"{title} [{run.id}]" in server.app.picture(run, "samples", lang).split('src=')[0]
    # The run was started from an English page: a Chinese page shows its picture with the
    # legend in Chinese (repainted), an English one the picture as the job drew it.
    import base64

    from ganapp import picture_text, render

    shown = {lang: base64.b64decode(server.app.picture(run, "samples", lang).split("base64,")[1].split('"')[0])
             for lang in ("en", "zh-TW")}
    assert shown["en"] == run.picture
    if picture_text.picture_language("zh-TW") == "zh-TW":  # a CJK font is installed
        assert shown["zh-TW"] != run.picture and shown["zh-TW"] == render.relabel_scatter_png(run.picture, "zh-TW")
    # The loss curves too: redrawn from the run's history in the page's language.
    from ganapp import curves

    drawn = {lang: base64.b64decode(server.app.picture(run, "curves", lang).split("base64,")[1].split('"')[0])
             for lang in ("en", "zh-TW")}
    assert run.curves is not None and drawn["en"] == run.curves
    if picture_text.picture_language("zh-TW") == "zh-TW":
        assert drawn["zh-TW"] != run.curves
        assert drawn["zh-TW"] == curves.training_curves_png(run.history, lang="zh-TW")
    # And the bar chart: the job draws it in both languages.
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 40, "metrics_every": 40}), name="ring8: vanilla")
    manager.wait(owner, run.id, timeout_s=60)
    charts = {lang: base64.b64decode(server.app.picture(run, "metrics", lang).split("base64,")[1].split('"')[0])
              for lang in ("en", "zh-TW")}
    assert run.metrics_picture is not None and charts["en"] == run.metrics_picture
    if picture_text.picture_language("zh-TW") == "zh-TW":
        assert run.metrics_picture_other is not None and charts["zh-TW"] == run.metrics_picture_other
        assert charts["zh-TW"] != charts["en"]


def test_a_compared_run_without_views_still_says_its_step():
    """digits keeps no views: its pane is the picture alone, with the step under it."""
    from types import SimpleNamespace

    from ganapp.web import timelapse

    stub = SimpleNamespace(kept_pictures=lambda run: [(300, b"png")],
                           picture_at=lambda run, step, lang: (300, '<img class="ganapp-picture" alt="x">'),
                           views_kept=SimpleNamespace(at=lambda run, step: None))
    step, html = timelapse.pane_html(stub, SimpleNamespace(), None, "zh-TW", "a")
    assert step == 300 and 'data-step="300"' in html and "第 300 步" in html and 'class="ganapp-picture"' in html


def test_a_paused_pair_shows_each_sides_steps_by_hand(server, tmp_path):
    """While a pair trains, both panes show one step (the slower side's, or a step both kept a
    picture of); paused, each pane shows its own run as it is, so that a D or G step taken by
    hand shows at once on both sides (a user test stepped a pair at 526 and 398 and both
    panes stayed at step 300, until the slower side reached 400)."""
    from ganapp.server.manager import Run

    def run(run_id: str, steps: list[int]) -> Run:
        made = Run(id=run_id, owner="pair-owner", name=run_id, kind="train",
                   config=GANConfig(**{**TINY, "sample_every": 100}), folder=tmp_path, state="running")
        for step in steps:
            png = f"{run_id}-{step}".encode()
            made.sample = (step, png)
            made.picture, made.picture_step = png, step
            made.picture_count += 1
            made.step = step
            server.app.keep_picture(made, made.sample)
        return made

    fast, slow = run("fast", [100, 200, 300, 400, 500, 527]), run("slow", [100, 200, 300, 399])
    ui = server.app.ui

    def shown() -> tuple[str, str]:
        out: dict = {}
        server.app.handlers.live_view(fast, slow, [fast, slow], {}, out, "en")
        return out[ui.samples], out[ui.samples_b]

    a, b = shown()
    assert "at step 300" in a and "at step 300" in b, (a, b)
    fast.pause_wanted = True  # one side paused (the other's pause not yet asked): still one step
    a, b = shown()
    assert "at step 300" in a and "at step 300" in b, (a, b)
    slow.pause_wanted = True
    a, b = shown()
    assert "at step 527" in a and "at step 399" in b, (a, b)


def test_a_pair_is_shown_at_one_step_when_a_picture_arrives_during_the_poll(server, tmp_path):
    """The job's pump thread may store a run's next picture while a poll is composing the
    page: both panes must still show the step the poll read at its start (this raced on a
    busy machine: one pane at step 400, the other at 700)."""
    from ganapp.server.manager import Run

    def run(run_id: str, steps: list[int]) -> Run:
        made = Run(id=run_id, owner="race-owner", name=run_id, kind="train",
                   config=GANConfig(**{**TINY, "sample_every": 100}), folder=tmp_path, state="running")
        for step in steps:  # what the pump does, in its order
            png = f"{run_id}-{step}".encode()
            made.sample = (step, png)
            made.picture, made.picture_step = png, step
            made.picture_count += 1
        return made

    slow, fast = run("slow", [400]), run("fast", [100, 400])
    # The fast side's picture of step 700 arrives between the poll's read and its drawing:
    # its picture and picture_step are already new, its `sample` (read at once) is not yet.
    fast.picture, fast.picture_step = b"fast-700", 700
    out: dict = {}
    server.app.handlers.live_view(slow, fast, [slow, fast], {}, out, "en")
    ui = server.app.ui
    assert "at step 400" in out[ui.samples] and "at step 400" in out[ui.samples_b], (out[ui.samples],
                                                                                    out[ui.samples_b])
