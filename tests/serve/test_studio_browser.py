"""The poem studio (the page at ``/``) in a real browser: Debian's Chromium, driven by Playwright.

The server is ``tangrnn serve`` with the bundled model, as a user starts it. The browser may reach that server
only: any other address the page asked for would be recorded and fail the test (the page must work offline).
``.ci/run`` installs Chromium where it is missing; elsewhere the test is skipped without it, except under CI.
With ``TANGRNN_SCREENSHOT=docs/studio.png`` the test saves the screenshot the README shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tiny_server import serving

CHROMIUM = os.environ.get("TANGRNN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: .ci/run installs Debian's `chromium` package", pytrace=False)
    pytest.skip("no Chromium here (apt-get install chromium; .ci/run does it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def studio():
    """The server's URL and a browser page on it (a desktop window), with every request it makes recorded."""
    with serving() as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1000}, locale="zh-CN")
        foreign: list[str] = []

        def only_this_server(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto(base)
        yield base, page, foreign, problems
        browser.close()


def test_the_page_loads_offline_with_its_labels(studio):
    _, page, foreign, problems = studio
    assert "诗坊" in page.title() and "poem studio" in page.title()
    for label in ("体裁", "form", "藏头", "acrostic heads", "平仄", "tones", "押韵", "rhyme", "温度", "种子"):
        assert label in page.inner_text("main")
    sync_api.expect(page.locator("#model")).to_contain_text("tang-lstm")
    assert foreign == [] and problems == []


def test_an_acrostic_with_strict_tones_is_shown_with_its_marks(studio):
    _, page, foreign, problems = studio
    page.select_option("#form", "五绝")
    page.fill("#acrostic", "春江花月")
    page.select_option("#tones", "strict")
    page.select_option("#rhyme", "auto")
    page.fill("#seed", "7")
    page.fill("#num_poems", "2")
    page.click("#write-button")
    page.wait_for_selector("#poems .poem")
    poems = page.locator("#poems .poem")
    assert poems.count() == 2
    first = poems.nth(0)
    verses = first.locator(".verse")
    assert verses.count() == 4
    assert [verses.nth(i).locator(".ch .c").first.inner_text() for i in range(4)] == list("春江花月")
    assert first.locator(".ch").count() == 20
    assert set(first.locator(".ch .t").all_inner_texts()) <= {"平", "仄", "○"}
    assert first.locator(".ch.rhyme").count() >= 2
    assert "合律" in first.locator(".meta").inner_text()
    if os.environ.get("TANGRNN_SCREENSHOT"):
        page.screenshot(path=os.environ["TANGRNN_SCREENSHOT"], full_page=True)
    assert foreign == [] and problems == []


def test_a_bad_request_shows_its_error_in_the_page(studio):
    _, page, _, _ = studio
    page.fill("#temperature", "-1")
    page.click("#write-button")
    page.wait_for_selector("#write-error:not(:empty)")
    assert "temperature must be 0 or more" in page.inner_text("#write-error")
    assert page.get_attribute("#temperature", "aria-invalid") == "true"
    page.fill("#temperature", "0.8")


def test_the_keyboard_writes_a_poem(studio):
    _, page, _, _ = studio
    page.select_option("#form", "七绝")
    page.fill("#acrostic", "")
    page.fill("#seed", "3")
    page.fill("#num_poems", "1")
    page.focus("#seed")
    page.keyboard.press("Enter")  # a form submits from any of its fields
    sync_api.expect(page.locator("#poems .poem .verse")).to_have_count(4)
    assert page.inner_text("#write-error") == ""
    assert page.locator("#poems .poem .ch").count() == 28


def test_the_check_box_reports_any_poem(studio):
    _, page, _, _ = studio
    page.fill("#poem", "床前明月光，疑是地上霜。举头望明月，低头思故乡。")
    page.click("#check-button")
    page.wait_for_selector("#checked .poem")
    report = page.inner_text("#checked")
    assert "出律" in report and "孤平" in report and "第1句第3字 明" in report
    assert page.locator("#checked .ch.bad .c").all_inner_texts() == ["明", "上", "头"]
    page.fill("#poem", "白日依山尽")
    page.click("#check-button")
    page.wait_for_selector("#check-error:not(:empty)")
    assert page.locator("#checked .poem").count() == 0


def test_a_phone_sized_window_needs_no_sideways_scrolling(studio):
    _, page, _, _ = studio
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1100, "height": 1000})


def test_the_screenshot_path_is_documented():
    assert "docs/studio.png" in (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
