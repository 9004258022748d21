"""The stepping pages without a browser: what they say at each step, that they fetch
nothing, and their bad input. (tests/test_browser.py drives them in Chromium.)

Expected numbers come from the lecture's text (x=1, y=2, w=1: dL/dy_hat = -2 * 1 = -2),
its printed training trace (-2.0000, -7.8400, -16.2288; w ends at 1.9512 as the trace's
prediction 7.8049 = 4w says), closed forms, or ``jax.grad``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbackprop.numpy as jbnp
from jaxbackprop import draw, lecture, tape, train
from jaxbackprop.cli import figures
from jaxbackprop.cli.main import main
from jaxbackprop.graph import Graph, LocalGradient, Operation, Value
from jaxbackprop.model import loss

NETWORK = re.compile(r"https?:|\b(?:src|href|action|srcset|poster)\s*=\s*[\"']|url\s*\(|"
                     r"@import|<link|<iframe|fetch\s*\(|XMLHttpRequest|WebSocket|//[a-z0-9.-]+\.[a-z]{2,}",
                     re.IGNORECASE)


def steps_of(page: str) -> list[dict]:
    """The steps a page carries, from its JSON."""
    data = re.search(r'<script type="application/json" id="stepper-data">(.*?)</script>',
                     page, re.S)
    assert data
    return json.loads(data[1].replace("<\\/", "</"))["steps"]


def assert_self_contained(page: str) -> None:
    """No URL, no attribute or CSS that could fetch: the page opens from file:// offline."""
    found = NETWORK.search(page)
    assert found is None, page[max(0, found.start() - 80):found.end() + 80]
    assert page.count("<svg") >= 1 and "<script src" not in page


@pytest.fixture(scope="module")
def lecture_history():
    _, history = train.train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                        learning_rate=lecture.LEARNING_RATE,
                                        epochs=lecture.EPOCHS)
    return history


def test_graph_page_states_each_step_with_the_lectures_numbers() -> None:
    page = draw.html(lecture.linear_regression(1.0, 2.0, 1.0))
    assert_self_contained(page)
    texts = [s["text"] for s in steps_of(page)]
    phases = [s["phase"] for s in steps_of(page)]
    # 1 + 3 forward (inputs, then node by node), 5 edges, dL/dL + 3 edges + the summary
    assert phases == ["forward"] * 4 + ["local"] * 5 + ["backward"] * 5
    assert texts[1] == "Forward pass: y_hat = w \u00d7 x = 1 \u00d7 1 = 1."
    assert texts[2] == "Forward pass: s = y_hat - y = 1 - 2 = -1."
    assert "dL/ds = 2s = -2" in texts[8]
    assert "dy_hat/dx = w = 1; not needed: x is fixed data" in texts[5]
    assert texts[9] == "Backward pass: start at the output: dL/dL = 1."
    assert texts[11] == ("Backward pass: dL/dy_hat = dL/ds \u00d7 ds/dy_hat = -2 \u00d7 1 = -2.")
    assert texts[12] == ("Backward pass: dL/dw = dL/dy_hat \u00d7 dy_hat/dw = -2 \u00d7 1 = -2.")
    assert texts[13].startswith("Done: dL/dw = -2.")


def test_graph_page_fills_each_adjoint_when_its_last_path_is_done() -> None:
    steps = steps_of(draw.html(lecture.linear_regression(1.0, 2.0, 1.0)))
    filled = [(k, element) for k, s in enumerate(steps) for element, state in s["states"].items()
              if state == "filled"]
    # L, s, y_hat, w in order from the output back, each at its own backward step
    assert filled == [(9, "v5"), (10, "v4"), (11, "v3"), (12, "v0")]
    assert steps[12]["labels"]["v0"] == ["w = 1", "(input)", "dL/dw = -2"]
    greyed = {e for s in steps for e, state in s["states"].items() if state == "notneeded"}
    assert greyed == {"e0_1", "e1_1"}  # x -> *, y -> -: the lecture's red edges


def test_a_value_used_twice_shows_each_path_and_their_sum() -> None:
    # f(x) = x / (x + 1) at x = 2: shares 1/(x+1) = 1/3 and -x/(x+1)^2 = -2/9, sum 1/9
    graph = tape.walkthrough(lambda x: x / (x + 1.0), 2.0)
    texts = [s["text"] for s in steps_of(draw.html(graph))]
    paths = [t for t in texts if "path " in t]
    assert len(paths) == 2 and "(path 1 of 2 from x)" in paths[0]
    assert paths[1].endswith("the sum over its 2 paths: -0.2222 + 0.3333 = 0.1111.") or \
        paths[1].endswith("the sum over its 2 paths: 0.3333 + -0.2222 = 0.1111.")
    assert math.isclose(float(jax.grad(lambda x: x / (x + 1.0))(2.0)), 1 / 9, rel_tol=1e-6)


def test_any_function_steps_with_jax_grads_numbers() -> None:
    def neuron(w, x, b):
        return jbnp.tanh(w * x + b)

    graph = tape.walkthrough(neuron, 0.5, 2.0, 0.1, argnums=(0, 2))
    page = draw.html(graph)
    assert_self_contained(page)
    texts = [s["text"] for s in steps_of(page)]
    dw, db = jax.grad(lambda w, x, b: jnp.tanh(w * x + b), argnums=(0, 2))(0.5, 2.0, 0.1)
    done = texts[-1]
    assert f"/dw = {float(dw):.4f}".rstrip("0") in done and f"/db = {float(db):.4f}" in done
    assert "not needed: x is fixed data" in " ".join(texts)


def test_nan_and_inf_show_as_such() -> None:
    graph = tape.walkthrough(lambda x: jbnp.log(x) * 2.0, -1.0)  # log(-1) = nan
    texts = [s["text"] for s in steps_of(draw.html(graph))]
    assert texts[1] == "Forward pass: v1 = log(x) = log(-1) = nan."
    graph = tape.walkthrough(lambda x: 1.0 / x, 0.0)
    steps = steps_of(draw.html(graph))
    assert steps[1]["text"] == "Forward pass: v1 = 1 / x = 1 / 0 = inf."
    assert steps[-1]["text"] == "Done: dv1/dx = -inf."  # -1/x^2 at 0
    assert steps[-1 - 1]["labels"]["v0"][-1] == "dv1/dx = -inf"


def test_a_graph_too_large_to_step_is_refused_clearly_and_shown_as_text() -> None:
    def chain(x):
        for _ in range(draw.MAX_OPERATIONS + 1):
            x = x * 1.0
        return x

    graph = tape.walkthrough(chain, 2.0)
    with pytest.raises(ValueError, match=r"has 151 operations; .* at most 150 .*graph.table"):
        draw.html(graph)
    shown = graph._repr_html_()
    assert shown.startswith("<pre>") and "at most 150" in shown
    assert graph._repr_svg_() is None
    assert repr(graph).startswith("Graph(152 values: x, ") and len(repr(graph)) < 150


def test_graph_shows_itself_in_jupyter(monkeypatch) -> None:
    graph = lecture.linear_regression()
    shown = graph._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and "dL/dy_hat = dL/ds" in shown
    assert graph._repr_svg_().startswith("<?xml") or graph._repr_svg_().startswith("<svg")
    monkeypatch.setattr(draw, "RENDERERS", ("no-such-renderer-for-jaxbackprop",))
    assert graph._repr_svg_() is None  # Jupyter then shows text
    assert graph._repr_html_().startswith("<pre>1. Forward pass")
    assert "pip install graphviz-pure" in graph._repr_html_()


def test_training_page_steps_through_the_lectures_30_updates(lecture_history) -> None:
    graphs = figures.training_graphs(lecture_history, lecture.X_DATA, lecture.Y_DATA,
                                     lecture.W0, lecture.LEARNING_RATE)
    page = draw.training_html(graphs, lecture_history, learning_rate=lecture.LEARNING_RATE)
    assert_self_contained(page)
    steps = steps_of(page)
    assert len(steps) == 30
    for k, grad in enumerate(["-2.0000", "-7.8400", "-16.2288"]):  # the notes' trace
        assert f"The gradient dL/dw = {grad}." in steps[k]["text"]
    assert steps[0]["text"].startswith(
        "Update 1 of 30 (epoch 0, sample 0): the sample x = 1, y = 2.")
    assert "w \u2190 w \u2212 lr \u00d7 g = 1.0000 \u2212 0.01 \u00d7 (-2.0000) = 1.0200." in \
        steps[0]["text"]
    assert steps[-1]["text"].endswith("= 1.9512.")
    assert lecture.X_PREDICT * 1.9512 == pytest.approx(7.8049, abs=1e-4)  # the trace's last line
    np.testing.assert_allclose([s["loss"] for s in steps],
                               np.asarray(lecture_history.losses).reshape(-1), rtol=1e-6)
    assert steps[1]["labels"]["v0"] == ["w = 1.02", "(input)", "dL/dw = -7.84"]


def test_training_page_refuses_numbers_that_disagree(lecture_history) -> None:
    graphs = figures.training_graphs(lecture_history, lecture.X_DATA, lecture.Y_DATA,
                                     lecture.W0, lecture.LEARNING_RATE)
    with pytest.raises(ValueError, match=r"step 0: w - learning_rate \* g = 1.002, but the "
                                         r"next w is 1.02"):
        draw.training_html(graphs, lecture_history, learning_rate=0.001)
    other_sample = lecture.linear_regression(3.0, 6.0, float(graphs[1].value("w").value))
    # (3 * 1.02 - 6)^2 = 8.6436 where the history has (2 * 1.02 - 4)^2 = 3.8416
    with pytest.raises(ValueError,
                       match="step 1: the graph's loss is 8.6436, the history's 3.8416"):
        draw.training_html([graphs[0], other_sample] + graphs[2:],
                           lecture_history, learning_rate=lecture.LEARNING_RATE)
    with pytest.raises(ValueError, match="at least one step"):
        draw.training_html([], lecture_history, learning_rate=0.01)
    two = lecture.multiply_node()
    with pytest.raises(ValueError, match="graph 0 has 2 parameters"):
        draw.training_html([two], lecture_history, learning_rate=0.01)


def test_weights_before_each_step_from_epochs_or_steps(lecture_history) -> None:
    ws = figures.weights_before_each_step(lecture_history, lecture.W0, lecture.LEARNING_RATE)
    assert ws.shape == (30,) and ws[0] == 1.0 and f"{ws[1]:.4f}" == "1.0200"
    per_step = lecture_history._replace(params=np.append(ws[1:], 1.9512))
    np.testing.assert_array_equal(
        figures.weights_before_each_step(per_step, lecture.W0, lecture.LEARNING_RATE), ws)
    with pytest.raises(ValueError, match="w after epoch 0"):
        figures.weights_before_each_step(lecture_history, lecture.W0, 0.02)


def test_cli_writes_the_pages(tmp_path: Path, capsys) -> None:
    assert main(["graph", "--x", "2", "--y", "4", "--out", str(tmp_path / "g.html")]) == 0
    page = (tmp_path / "g.html").read_text()
    assert_self_contained(page)
    assert any("dL/dw = dL/dy_hat \u00d7 dy_hat/dw = -4 \u00d7 2 = -8" in s["text"]
               for s in steps_of(page))  # the second note's 2sx = -8
    assert main(["train", "--out", str(tmp_path / "t.html")]) == 0
    steps = steps_of((tmp_path / "t.html").read_text())
    assert len(steps) == 30 and steps[-1]["text"].endswith("= 1.9512.")
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "t.txt")]) == 2
    assert main(["graph", "--out", str(tmp_path / "g.txt")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(".html" in line for line in errors)


def test_cli_train_html_of_a_diverged_run_shows_the_steps_taken(tmp_path: Path, capsys) -> None:
    assert main(["train", "--lr", "5", "--out", str(tmp_path / "d.html")]) == 1
    assert "the history up to it is in" in capsys.readouterr().err
    steps = steps_of((tmp_path / "d.html").read_text())
    assert len(steps) == 15  # diverged at epoch 4, sample 2
    assert steps[-1]["loss"] is None and "L = inf" in steps[-1]["text"]
    assert "e+" in steps[-2]["text"]  # huge numbers in scientific notation


def test_page_escapes_script_ends_and_refuses_nan_json() -> None:
    value = Value("a</script>", 1.0, "parameter", 1.0)
    graph = Graph((value,), (), "a</script>")
    assert "a</script>" not in draw.html(graph).split('id="stepper-data">')[1].split(
        "</script>")[0]
    edge = LocalGradient("w", "z", "2", 2.0)
    graph = Graph((Value("w", 1.0, "parameter", 2.0), Value("z", 2.0, "intermediate", 1.0)),
                  (Operation("z", "mul", ("w", "2"), (edge,)),), "z")
    assert_self_contained(draw.html(graph))
