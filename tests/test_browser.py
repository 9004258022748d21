"""The stepping pages in a real browser: headless Chromium driven by Selenium.

Each test opens a page from ``file://``, presses the keys through every step, reads the
numbers back from the page (the step's words and the figure's labels), checks the
browser logged no error, and screenshots each kind of step (checked not blank; kept in
``$JAXBACKPROP_SCREENSHOTS`` when that is set, to look at).

Needs Chromium and its driver: Debian's ``chromium`` and ``chromium-driver`` packages
(``apt-get install chromium chromium-driver``) and ``pip install selenium``; nothing is
downloaded at run time. Where they are missing the tests skip, saying what is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import optax
import pytest
from test_html import assert_self_contained, steps_of

import jaxbackprop.numpy as jbnp
from jaxbackprop import draw, lecture, tape, train
from jaxbackprop.cli import figures
from jaxbackprop.model import loss

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install selenium)")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
DRIVER = next((p for p in (os.environ.get("CHROMEDRIVER"), shutil.which("chromedriver"),
                           "/usr/bin/chromedriver") if p and Path(p).exists()), None)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver "
                    f"(found browser {CHROMIUM}, driver {DRIVER})")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="jaxbackprop-chromium-")
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    except Exception as error:  # a browser that cannot start here is a skip, said why
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"Chromium ({CHROMIUM}, driver {DRIVER}) does not start: {error}")
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = os.environ.get("JAXBACKPROP_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, path: Path) -> None:
    browser.get(path.resolve().as_uri())
    browser.get_log("browser")  # start each page with an empty log


def press(browser, key: str) -> None:
    ActionChains(browser).send_keys(key).perform()


def text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def label(browser, element_id: str) -> list[str]:
    """The label lines of an SVG element, as the page shows them now."""
    return browser.execute_script(
        "return Array.from(document.getElementById(arguments[0]).querySelectorAll('text'))"
        ".map(t => t.textContent);", element_id)


def state(browser, element_id: str) -> str | None:
    return browser.find_element(By.ID, element_id).get_attribute("data-state")


def assert_no_page_errors(browser) -> None:
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def screenshot(browser, shots: Path, name: str) -> Path:
    """Save a screenshot and check it is not blank: many colours, much ink."""
    from PIL import Image

    path = shots / f"{name}.png"
    data = browser.get_screenshot_as_png()
    path.write_bytes(data)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    inked = (pixels.min(axis=2) < 200).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert inked > 0.01 and colours > 50, (name, inked, colours)
    return path


def step_through(browser, expected: list[dict], shots: Path, name: str) -> None:
    """ArrowRight through every step: the words and the counter are each step's; one
    screenshot at the first step of each phase and at the last."""
    seen_phases: set[str] = set()
    for k, step in enumerate(expected):
        assert text(browser, "step-text") == step["text"]
        assert text(browser, "counter") == f"step {k + 1} of {len(expected)}"
        if step["phase"] not in seen_phases or k == len(expected) - 1:
            seen_phases.add(step["phase"])
            screenshot(browser, shots, f"{name}_{k + 1:02d}_{step['phase']}")
        press(browser, Keys.ARROW_RIGHT)
    assert text(browser, "counter") == f"step {len(expected)} of {len(expected)}"  # stays
    assert_no_page_errors(browser)


def test_the_lectures_graph_steps_in_chromium(browser, tmp_path: Path, shots: Path) -> None:
    page = draw.html(lecture.linear_regression(1.0, 2.0, 1.0))
    assert_self_contained(page)
    path = tmp_path / "graph.html"
    path.write_text(page)
    open_page(browser, path)
    steps = steps_of(page)

    assert label(browser, "f-v3") == ["y_hat = ?", ""]  # nothing computed yet
    step_through(browser, steps, shots, "graph")
    # the end: every adjoint in its node, the chain-rule products on the edges
    assert label(browser, "b-v3") == ["y_hat = 1", "dL/dy_hat = -2"]
    assert label(browser, "b-v0") == ["w = 1", "(input)", "dL/dw = -2"]
    assert label(browser, "b-e1_0") == ["ds/dy_hat = 1", "dL/dy_hat = dL/ds * ds/dy_hat",
                                        "= -2 * 1 = -2"]
    assert label(browser, "f-e0_1") == ["dy_hat/dx = w = 1", "(not needed)"]
    assert state(browser, "b-v0") == "filled" and state(browser, "f-e0_1") == "notneeded"
    assert browser.find_element(By.CSS_SELECTOR, '[data-prefix="b-"]').is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, '[data-prefix="f-"]').is_displayed()

    press(browser, Keys.HOME)
    assert text(browser, "step-text") == steps[0]["text"]
    assert label(browser, "f-v3") == ["y_hat = ?", ""]
    press(browser, Keys.END)
    press(browser, Keys.ARROW_LEFT)
    press(browser, Keys.ARROW_LEFT)
    assert text(browser, "step-text") == steps[-3]["text"]  # dL/dy_hat = ... = -2
    assert "dL/dy_hat = dL/ds \u00d7 ds/dy_hat = -2 \u00d7 1 = -2" in steps[-3]["text"]
    assert label(browser, "b-v0")[-1] == ""  # dL/dw is not known yet
    assert browser.find_element(By.CSS_SELECTOR, "#b-e1_0.current")  # the edge highlighted

    press(browser, Keys.HOME)
    press(browser, Keys.SPACE)  # play: it moves on by itself
    WebDriverWait(browser, 10).until(lambda b: text(b, "counter") != f"step 1 of {len(steps)}")
    press(browser, Keys.SPACE)  # pause: it stays
    paused_at = text(browser, "counter")
    assert "pause" not in text(browser, "play")
    browser.execute_script("return new Promise(r => setTimeout(r, 1500));")
    assert text(browser, "counter") == paused_at
    browser.find_element(By.CSS_SELECTOR, 'button[data-go="end"]').click()
    assert text(browser, "step-text") == steps[-1]["text"]
    assert_no_page_errors(browser)


def test_a_loss_of_zero_is_drawn_on_the_chart(browser, tmp_path: Path) -> None:
    """Starting at the minimum (w0 = 2 on y = 2x) every loss is exactly 0: the log-scale
    chart draws each at ZERO_DRAWN_AT and says so, instead of an empty chart."""
    _, history = train.train_per_sample(loss, 2.0, lecture.X_DATA, lecture.Y_DATA,
                                        optimizer=optax.sgd(lecture.LEARNING_RATE), epochs=2)
    path = figures.write_training_page(tmp_path / "train.html", history, w0=2.0)
    assert "0 drawn at 1e-15" in path.read_text()
    open_page(browser, path)
    for k in range(6):
        points = browser.execute_script(
            "return document.querySelector('#chart polyline').getAttribute('points')")
        assert len(points.split()) == k + 1
        press(browser, Keys.ARROW_RIGHT)
    assert_no_page_errors(browser)


def test_the_lectures_training_steps_in_chromium(browser, tmp_path: Path, shots: Path) -> None:
    _, history = train.train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                        optimizer=optax.sgd(lecture.LEARNING_RATE),
                                        epochs=lecture.EPOCHS)
    path = figures.write_training_page(tmp_path / "train.html", history)
    page = path.read_text()
    assert_self_contained(page)
    open_page(browser, path)
    steps = steps_of(page)
    assert len(steps) == 30
    shown = []
    for k in range(30):
        shown.append(text(browser, "step-text"))
        points = browser.execute_script(
            "return document.querySelector('#chart polyline').getAttribute('points')")
        assert len(points.split()) == k + 1  # the loss curve grows by one point a step
        if k in (0, 29):
            screenshot(browser, shots, f"training_{k + 1:02d}")
        press(browser, Keys.ARROW_RIGHT)
    assert shown == [s["text"] for s in steps]
    for k, grad in enumerate(["-2.0000", "-7.8400", "-16.2288"]):  # the notes' trace
        assert f"The gradient dL/dw = {grad}." in shown[k]
    assert shown[-1].endswith("= 1.9512.")
    assert label(browser, "t-v0")[0] == "w = 1.9405" and label(browser, "t-v1") == [
        "x = 3", "(input, fixed data)"]

    browser.execute_script("var s = document.getElementById('slider'); s.value = 1;"
                           "s.dispatchEvent(new Event('input'));")
    assert text(browser, "counter") == "step 2 of 30"
    assert "The gradient dL/dw = -7.8400." in text(browser, "step-text")
    assert label(browser, "t-v0") == ["w = 1.02", "(input)", "dL/dw = -7.84"]
    press(browser, Keys.END)
    assert text(browser, "counter") == "step 30 of 30"
    assert_no_page_errors(browser)


def test_any_function_steps_in_chromium(browser, tmp_path: Path, shots: Path) -> None:
    def neuron(w, x, b):
        return jbnp.tanh(w * x * w + b)  # w used twice: two paths back

    graph = tape.walkthrough(neuron, 0.5, 2.0, 0.1, argnums=(0, 2))
    path = draw.write_graph(graph, tmp_path / "neuron.html")
    open_page(browser, path)
    steps = steps_of(path.read_text())
    step_through(browser, steps, shots, "neuron")
    assert any("the sum over its 2 paths" in s["text"] for s in steps)


def test_the_notebook_output_steps_inside_its_frame(browser, tmp_path: Path) -> None:
    graph = lecture.linear_regression(2.0, 4.0, 1.0)
    path = tmp_path / "notebook.html"
    path.write_text(f"<!DOCTYPE html><html><body>{graph._repr_html_()}</body></html>")
    open_page(browser, path)
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        browser.find_element(By.CSS_SELECTOR, 'button[data-go="end"]').click()
        browser.find_element(By.CSS_SELECTOR, 'button[data-go="prev"]').click()
        assert text(browser, "step-text") == (
            "Backward pass: dL/dw = dL/dy_hat \u00d7 dy_hat/dw = -4 \u00d7 2 = -8.")  # 2sx
    finally:
        browser.switch_to.default_content()
    assert_no_page_errors(browser)


def test_the_largest_page_allowed_still_answers_at_once(browser, tmp_path: Path) -> None:
    def chain(x):
        for _ in range(draw.MAX_OPERATIONS // 2):
            x = jbnp.sin(x) * 1.01
        return x

    graph = tape.walkthrough(chain, 0.5)
    assert len(graph.operations) == draw.MAX_OPERATIONS
    path = draw.write_graph(graph, tmp_path / "largest.html")
    steps = steps_of(path.read_text())
    open_page(browser, path)
    press(browser, Keys.END)  # renders every step's changes in one go
    assert text(browser, "counter") == f"step {len(steps)} of {len(steps)}"
    press(browser, Keys.ARROW_LEFT)
    assert text(browser, "step-text") == steps[-2]["text"]
    assert_no_page_errors(browser)
