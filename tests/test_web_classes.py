"""A class in real browsers: a teacher and three students, each in a browser context of their
own (their own token), on the real page over the real job server (Debian's chromium via
Playwright). The teacher opens a class, students join by link (two) and by typing the
code (one), each presses Start once, and the teacher's screen pools their finished runs;
no student sees another's runs, only the pooled figures.

Screenshots of the teacher's screen (English and 繁體中文) land in artifacts/.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import open_page, owner_token

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow

PRESET = "ring8: minibatch discrimination"
STEPS = 40  # tiny runs: a second or two each
RUN_S = 120  # the session's first job may wait for the forkserver's imports


def _context(browser, locale="en-US"):
    return browser.new_context(viewport={"width": 1280, "height": 720}, locale=locale)


def test_every_class_action_is_a_named_endpoint_and_takes_no_page_name(server):
    names = {fn.api_name for fn in server.demo.fns.values()}
    assert {"open_class", "join_class", "assign_class", "start_assignment", "class_table", "export_class",
            "close_class"} <= names
    assert {"start", "tick", "on_load"} <= names  # the page's own events keep their names
    assert not {n for n in names if isinstance(n, str) and n.startswith(("open_class_", "start_1", "join_class_"))}


def test_a_teacher_and_three_students_pool_their_runs(server, browser, artifacts_dir):
    from gradio_client import Client

    url = server.url.rstrip("/") + "/"
    contexts = [_context(browser) for _ in range(4)]
    try:
        teacher, *students = (context.new_page() for context in contexts)
        # ---- the teacher opens a class: a preset pair, tiny runs, names shown
        open_page(teacher, url + "?lang=en")
        teacher.locator("#class-setup").get_by_text(re.compile("For the teacher")).click()
        teacher.locator("#class-experiment input").click()
        teacher.locator("#class-experiment").get_by_role("option", name=f"Preset pair: {PRESET}", exact=True).click()
        teacher.locator("#class-steps input").fill(str(STEPS))
        teacher.locator("#class-names input").check()
        teacher.locator("#class-open").click()
        expect(teacher.locator("#class-short-code")).to_have_text(re.compile(r"^[A-Z2-9]{6}$"), timeout=20_000)
        short = teacher.locator("#class-short-code").inner_text()
        link = teacher.locator("#class-link").get_attribute("href")
        assert re.search(r"\?class=[0-9a-f]{32}&lang=en$", link), link
        code = link.split("class=")[1].split("&")[0]
        size = teacher.evaluate("parseFloat(getComputedStyle(document.querySelector('#class-short-code')).fontSize)")
        assert size >= 60, size  # the code in large type, for the board

        # ---- students join: two by the link, one by typing the short code (and a name with markup)
        open_page(students[0], link)
        open_page(students[1], link)
        open_page(students[2], url)
        students[2].locator("#class-code-in input, #class-code-in textarea").first.fill(short.lower())
        name_box = students[2].locator("#class-name-in input, #class-name-in textarea").first
        name_box.fill("<img src=x onerror=alert(1)>Mei")
        students[2].locator("#class-join-button").click()
        assignments = []
        for page in students:
            box = page.locator("#class-assignment")
            expect(box).to_contain_text(re.compile(r"Your assignment: .* seed \d"), timeout=20_000)
            expect(page.locator("#class-start")).to_be_visible()
            assignments.append(re.search(r"assignment: (\S+) .*seed (\d+)", box.inner_text()).groups())
        assert assignments == [("vanilla", "0"), ("MBD", "0"), ("vanilla", "1")], assignments

        # ---- one Start each; the run shows in the student's own live panes and finishes
        for page in students:
            page.locator("#class-start").click()
        for page, (variant, seed) in zip(students, assignments):
            expect(page.locator("#status")).to_contain_text(f"seed {seed}", timeout=RUN_S * 1000)
            expect(page.locator("#status")).to_contain_text("finished", timeout=RUN_S * 1000)

        students[1].screenshot(path=str(artifacts_dir / "class-student-en.png"))
        # ---- a student sees only their own runs, and the pooled figures
        tokens = [owner_token(page) for page in students]
        runs = [server.app.jobs.runs(token) for token in tokens]
        assert all(len(r) == 1 for r in runs), runs
        for page, own in zip(students, runs):
            shown = page.locator("#runs-table").inner_text()
            assert own[0].name in shown
            for other in runs:
                if other is not own:
                    assert other[0].id not in shown
            expect(page.locator("#class-student-table table.class-pooled")).to_contain_text("vanilla", timeout=20_000)
            assert page.locator("#class-board").is_hidden()  # the pictures are the teacher's only
            assert "Mei" not in page.content() or page is students[2]
        # switching the language relabels the class's panel at once
        students[1].locator("#lang-switch").get_by_text("繁體中文").click()
        expect(students[1].locator("#class-assignment")).to_contain_text("你的任務", timeout=20_000)
        expect(students[1].locator("#class-student-table")).to_contain_text("組別")
        client = Client(url, verbose=False)
        table = client.predict(tokens[1], code, api_name="/class_table")
        assert {row["variant"]: row["n"] for row in table["rows"]} == {"vanilla": 2, "MBD": 1}
        assert "run_id" not in json.dumps(table) and runs[0][0].id not in json.dumps(table)
        with pytest.raises(Exception, match="no run"):
            client.predict(tokens[1], runs[0][0].id, False, 200, api_name="/poll_run")
        stranger = client.predict(api_name="/new_token")
        with pytest.raises(Exception, match="no class"):
            client.predict(stranger, code, api_name="/class_table")

        # ---- the teacher's screen: code, pooled table, dots, pictures (names escaped)
        teacher.goto(url + "?view=class&lang=en")
        board = teacher.locator("#class-board")
        expect(board).to_be_visible(timeout=30_000)
        expect(teacher.locator("table.class-pooled")).to_contain_text("MBD", timeout=20_000)
        rows = teacher.locator("table.class-pooled tbody tr")
        texts = [rows.nth(i).inner_text() for i in range(rows.count())]
        vanilla = next(t for t in texts if t.startswith("vanilla"))
        mbd = next(t for t in texts if t.startswith("MBD"))
        assert "too few to trust" in vanilla and re.search(r"\t2\t", vanilla), vanilla
        assert re.search(r"\t1\t", mbd) and "±" in mbd, mbd
        expect(teacher.locator(".class-tile")).to_have_count(3, timeout=20_000)
        captions = teacher.locator(".class-grid").inner_text()
        assert "<img src=x onerror=alert(1)>Mei" in captions  # shown as text, not markup
        assert teacher.locator(".class-grid img[onerror]").count() == 0
        expect(teacher.locator("#class-plot img.class-dots")).to_be_visible()
        assert teacher.locator("#main").is_hidden() and teacher.locator("#runs-section").is_hidden()
        sizes = teacher.evaluate("""() => [...document.querySelectorAll(
            '#class-board td, #class-board th, #class-board .class-tile figcaption, #class-read p, .class-links')]
            .filter(e => e.offsetParent && e.textContent.trim()).map(e => parseFloat(getComputedStyle(e).fontSize))""")
        assert sizes and min(sizes) >= 18, sizes
        teacher.screenshot(path=str(artifacts_dir / "class-teacher-en.png"))
        teacher.screenshot(path=str(artifacts_dir / "class-teacher-en-full.png"), full_page=True)
        with teacher.expect_download() as download:
            teacher.locator("#class-md").click()
        markdown = open(download.value.path(), encoding="utf-8").read()
        assert "| vanilla (n = 2 < 3: too few to trust) | none | 2 |" in markdown, markdown
        with teacher.expect_download() as download:
            teacher.locator("#class-csv").click()
        assert open(download.value.path(), encoding="utf-8").read().startswith("variant,runs,finished,apart")

        # ---- in 繁體中文
        teacher.goto(url + "?view=class&lang=zh-TW")
        expect(teacher.locator(".class-code-label")).to_have_text("班級代碼", timeout=30_000)
        expect(teacher.locator("table.class-pooled")).to_contain_text("組別")
        expect(teacher.locator("#class-read")).to_contain_text("標準差")
        expect(teacher.locator(".class-tile")).to_have_count(3)
        teacher.screenshot(path=str(artifacts_dir / "class-teacher-zh-TW.png"))
        teacher.screenshot(path=str(artifacts_dir / "class-teacher-zh-TW-full.png"), full_page=True)

        # ---- a finished student's assignment says so; the next Start takes the next free slot
        expect(students[0].locator("#class-assignment")).to_contain_text("Done: your run is in the class's table")
        students[0].locator("#class-start").click()
        expect(students[0].locator("#class-assignment")).to_contain_text("MBD", timeout=20_000)
    finally:
        for context in contexts:
            context.close()


def test_the_table_and_the_dots_escape_and_draw_what_the_class_ran():
    """The teacher's table escapes every cell, says n < 3 and runs apart in the visitor's
    language, and the dot plot draws one panel per headline metric at projector size."""
    from ganapp.server.classes import pooled
    from ganapp.web import classes_view

    def result(variant, seed, status="finished", **metrics):
        return {"variant": variant, "seed": seed, "status": status, "step": 10, "metrics": metrics,
                "reference": {}, "train_seconds": 1.0, "seconds": 1.0}

    table = pooled([result("vanilla", 0, modes_covered=8.0, high_quality=0.2),
                    result("vanilla", 1, modes_covered=6.0, high_quality=0.1),
                    result("vanilla", 2, "failed"),
                    result("<script>x</script>", 0, modes_covered=1.0, high_quality=0.0)], ["vanilla"])
    english = classes_view._html_table(table, "en")
    assert "<script>" not in english and "&lt;script&gt;" in english
    assert "1 failed or stopped: not averaged" in english and "n = 2, fewer than 3: too few to trust" in english
    chinese = classes_view._html_table(table, "zh-TW")
    assert "組別" in chinese and "不列入平均" in chinese and "涵蓋的模式數" in chinese
    png = classes_view.dots_png(table, "zh-TW")
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(png))
    assert image.size == (2 * 360, 380)  # two panels: modes covered, high-quality samples
    assert len(set(image.getdata())) > 20  # dots, bars, text: not a blank picture
    assert classes_view.dots_png(pooled([], ["vanilla"]), "en") is None
