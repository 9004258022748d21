"""The lecture's figures: the command that knows the lecture makes the results, draw draws them.

:mod:`jaxbackprop.draw` only draws the graphs and histories it is given; this module
builds them from the lecture (its examples, its model, its training) for
``jaxbackprop lecture --figures DIR`` and ``jaxbackprop train --out FILE.html``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import optax

from jaxbackprop import draw, jaxpr, lecture, train
from jaxbackprop.graph import VIEWS, Graph, View
from jaxbackprop.io import write_text_atomic
from jaxbackprop.model import loss


def weights_before_each_step(history: Any, w0: float, learning_rate: float) -> np.ndarray:
    """``w`` before each step of a per-sample SGD run, flat, one per step.

    A history that records the parameters after every step gives them directly;
    one that records them per epoch is replayed with the lecture's update
    ``w <- w - learning_rate * g`` in its own dtype, and the replay is checked against
    every epoch's recorded ``w`` (``ValueError`` if it is not plain SGD at that rate).
    """
    grads = np.asarray(history.grads)
    params = np.asarray(history.params)
    epochs, samples = grads.shape[:2]
    dtype = grads.dtype
    if params.size == epochs * samples:  # w after every step: no replay needed
        return np.concatenate([[np.asarray(w0, dtype)], params.reshape(-1)[:-1]])
    w = np.asarray(w0, dtype)
    before = []
    for e in range(epochs):
        for i in range(samples):
            before.append(w)
            w = (w - np.asarray(learning_rate, dtype) * grads[e, i]).astype(dtype)
        recorded = params.reshape(-1)[e]
        if np.isfinite(recorded) and not np.isclose(w, recorded, rtol=1e-5, atol=1e-6):
            raise ValueError(f"the history's w after epoch {e} is {recorded}, not {w} "
                             f"as SGD with learning_rate={learning_rate:g} gives")
    return np.asarray(before)


def training_graphs(history: Any, xs: Any, ys: Any, w0: float, learning_rate: float,
                    steps: int | None = None) -> list[Graph]:
    """The lecture's graph (``lecture.linear_regression``) of each step's sample at the
    ``w`` before that step: what the training page shows, one per update."""
    ws = weights_before_each_step(history, w0, learning_rate)
    samples = len(xs)
    taken = len(ws) if steps is None else steps
    return [lecture.linear_regression(xs[k % samples], ys[k % samples], float(ws[k]))
            for k in range(taken)]


def write_training_page(path: str | os.PathLike[str], history: Any, *, w0: float = lecture.W0,
                        learning_rate: float = lecture.LEARNING_RATE,
                        steps: int | None = None) -> Path:
    """The training page (:func:`jaxbackprop.draw.training_html`) of a per-sample SGD run
    on the lecture's data, written atomically to ``path``; ``steps`` limits it to the
    steps taken (a diverged run)."""
    graphs = training_graphs(history, lecture.X_DATA, lecture.Y_DATA, w0, learning_rate, steps)
    page = draw.training_html(graphs, history, learning_rate=learning_rate)
    return write_text_atomic(Path(path), page)


def write_lecture_figures(folder: str | os.PathLike[str]) -> list[Path]:
    """Write the lecture's figures into ``folder`` and return their paths.

    ``lecture_chain_rule_*``, ``lecture_xy_node_*`` and ``lecture_graph_{forward,local,
    backward}`` (the linear regression at the first note's ``x=1, y=2, w=1``), each as
    ``.dot``, ``.svg`` and ``.png``; ``lecture_jaxpr.txt`` (the tape beside
    ``jax.make_jaxpr(jax.grad(loss))``); ``lecture_training.png`` (the second note's
    training: loss per step, per epoch, and ``w``); ``lecture_graph.html`` and
    ``lecture_training.html`` (the pages that step through them). Everything that needs
    no renderer is written first; without one, ``draw.RendererNotFoundError`` is raised
    at the end.
    """
    folder = Path(folder)
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    linear = lecture.linear_regression(x, y, w)  # one graph, drawn in each of its three views
    graphs: list[tuple[str, Graph, View]] = [(f"lecture_graph_{view}", linear, view)
                                             for view in VIEWS]
    graphs.insert(0, ("lecture_chain_rule", draw.chain_rule_graph(lecture.chain_rule()),
                      "backward"))
    graphs.insert(1, ("lecture_xy_node", lecture.multiply_node(), "local"))
    written = [draw.write_graph(graph, folder / f"{stem}.dot", view)
               for stem, graph, view in graphs]
    written.append(write_text_atomic(folder / "lecture_jaxpr.txt",
                                     jaxpr.side_by_side(loss, w, x, y) + "\n"))
    _, history = train.train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                        optimizer=optax.sgd(lecture.LEARNING_RATE),
                                        epochs=lecture.EPOCHS)
    path = np.concatenate([[lecture.W0], np.asarray(history.params).reshape(-1)])
    written.append(draw.write_figure(draw.training_figure(history.losses, history.epoch_loss,
                                                          path),
                                     folder / "lecture_training.png"))
    for stem, graph, view in graphs:
        written += [draw.write_graph(graph, folder / f"{stem}{suffix}", view)
                    for suffix in (".svg", ".png")]
    written.append(draw.write_graph(linear, folder / "lecture_graph.html"))
    written.append(write_training_page(folder / "lecture_training.html", history))
    return written
