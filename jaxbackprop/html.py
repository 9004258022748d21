"""The stepping page: one self-contained HTML file that steps through numbered states.

:func:`jaxbackprop.draw.html` and :func:`jaxbackprop.draw.training_html` decide what each
step shows; this module only assembles the page: the SVG figures inline, the steps as
JSON in a ``<script type="application/json">``, a little CSS and JavaScript inline. The
page fetches nothing (no CDN, no server, no font or image from anywhere), so it opens
from ``file://`` and inside a notebook's ``<iframe srcdoc>``.

Each step is a :class:`Step`: its text (the step in words, with its numbers: the page
shows it above the figure, so the page reads without the picture too), the phase it
belongs to, the label lines it sets on the figure's elements and the state it gives
them (``pending``, ``done``, ``notneeded``, ``filled``), and the elements it highlights.
Step ``k`` shows the initial labels and states with steps ``0..k`` applied in order.

Keys: ``ArrowRight`` next, ``ArrowLeft`` previous, ``Home`` the start, ``End`` the end,
``Space`` play/pause; the same as buttons, and a slider to jump.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Element state -> what it looks like is in _CSS; the JavaScript only sets data-state.
STATES: tuple[str, ...] = ("pending", "done", "notneeded", "filled")
ZERO_DRAWN_AT = 1e-15  # where a log-scale loss chart puts an exact 0 (also draw.py's plots)


@dataclass(frozen=True)
class Step:
    """One step of a page: its words, its phase, what it changes, what it highlights."""

    text: str
    phase: str
    labels: dict[str, list[str]] = field(default_factory=dict)  # element id -> label lines
    states: dict[str, str] = field(default_factory=dict)  # element id -> one of STATES
    focus: tuple[str, ...] = ()  # element ids highlighted at this step
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific numbers (the loss)


@dataclass(frozen=True)
class Picture:
    """An SVG whose elements carry ids ``<prefix><element id>``, shown in ``phases``."""

    svg: str
    prefix: str
    phases: tuple[str, ...]


def inline_svg(svg: str) -> str:
    """An SVG document as an element to put inside HTML: without its XML prolog, doctype
    and comments, and without the namespace declarations HTML does not need (they are
    URLs, and the page holds no URL at all)."""
    start = svg.index("<svg")
    body = svg[start:]
    while "<!--" in body:
        begin = body.index("<!--")
        body = body[:begin] + body[body.index("-->", begin) + 3:]
    for name in (' xmlns="http://www.w3.org/2000/svg"',
                 ' xmlns:xlink="http://www.w3.org/1999/xlink"'):
        body = body.replace(name, "")
    return body


def _json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``</`` can close the element; no NaN (not JSON)."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/")


def page(title: str, phases: Sequence[tuple[str, str]], figures: Sequence[Picture],
         initial_labels: dict[str, list[str]], initial_states: dict[str, str],
         steps: Sequence[Step], *, chart: bool = False, summary: str = "") -> str:
    """The whole page as text.

    ``phases`` are ``(name, heading)`` in order; every step's phase is one of them.
    ``chart`` adds the growing loss curve (each step's ``extra["loss"]``, ``None`` for
    NaN or inf; an exact 0 drawn at :data:`ZERO_DRAWN_AT`). ``summary`` is text shown
    under the figure (the table of all numbers).
    """
    if not steps:
        raise ValueError("a page needs at least one step")
    names = {name for name, _ in phases}
    for step in steps:
        if step.phase not in names:
            raise ValueError(f"step phase {step.phase!r} is not one of {sorted(names)}")
        for state in step.states.values():
            if state not in STATES:
                raise ValueError(f"element state {state!r} is not one of {STATES}")
    data = {
        "phases": [name for name, _ in phases],
        "figures": [{"prefix": f.prefix, "phases": list(f.phases)} for f in figures],
        "initial": {"labels": initial_labels, "states": initial_states},
        "steps": [{"text": s.text, "phase": s.phase, "labels": s.labels, "states": s.states,
                   "focus": list(s.focus), **s.extra} for s in steps],
        "chart": chart,
        "zeroDrawnAt": ZERO_DRAWN_AT,
    }
    phase_items = "".join(f'<li data-phase="{html.escape(name)}">{html.escape(heading)}</li>'
                          for name, heading in phases)
    figure_divs = "".join(
        f'<div class="figure" data-prefix="{html.escape(f.prefix)}">{inline_svg(f.svg)}</div>'
        for f in figures)
    zero = any(s.extra.get("loss") == 0 for s in steps)
    chart_div = ('<figure class="chart"><svg id="chart" viewBox="0 0 420 180" '
                 'role="img" aria-label="the loss at each step so far"></svg>'
                 '<figcaption>the loss at each step so far (log scale'
                 f'{f"; 0 drawn at {ZERO_DRAWN_AT:g}" if zero else ""})</figcaption></figure>'
                 if chart else "")
    summary_block = (f'<details><summary>every number as text</summary>'
                     f'<pre>{html.escape(summary)}</pre></details>' if summary else "")
    count = len(steps)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main id="stepper">
<h1>{html.escape(title)}</h1>
<div class="controls" role="toolbar" aria-label="step controls">
<button type="button" data-go="start" title="the start (Home)">&#xAB; start</button>
<button type="button" data-go="prev" title="previous step (ArrowLeft)">&#x25C0; back</button>
<button type="button" data-go="play" title="play / pause (Space)" id="play">&#x25B6; play</button>
<button type="button" data-go="next" title="next step (ArrowRight)">next &#x25B6;</button>
<button type="button" data-go="end" title="the end (End)">end &#xBB;</button>
<input type="range" id="slider" min="0" max="{count - 1}" value="0" aria-label="step">
<span id="counter">step 1 of {count}</span>
</div>
<ol class="phases">{phase_items}</ol>
<p id="step-text" aria-live="polite">{html.escape(steps[0].text)}</p>
{chart_div}
{figure_divs}
<p class="help">Keys: &#x2192; next step, &#x2190; previous, Home the start, End the end,
Space play/pause.</p>
{summary_block}
</main>
<script type="application/json" id="stepper-data">{_json(data)}</script>
<script>{_JS}</script>
</body>
</html>
"""


def embedded(page_text: str, *, height: int = 640, title: str = "stepper") -> str:
    """The page in an ``<iframe srcdoc>`` for a notebook's output: its keys, ids and
    script stay inside the frame (the notebook's own keys keep working)."""
    return (f'<iframe srcdoc="{html.escape(page_text, quote=True)}" title="{html.escape(title)}" '
            f'style="width: 100%; height: {height}px; border: 1px solid #ddd"></iframe>')


_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.2em; margin: 0 0 .5em; }
.controls { display: flex; flex-wrap: wrap; gap: .4em; align-items: center; }
.controls button { font-size: 1em; padding: .25em .7em; }
#slider { width: 14em; }
#counter { font-variant-numeric: tabular-nums; color: #555; }
.phases { display: flex; gap: 1.5em; padding: 0; list-style: none; margin: .6em 0; color: #999; }
.phases li.active { color: #222; font-weight: bold; border-bottom: 3px solid #e67e22; }
#step-text { font-size: 1.15em; min-height: 2.6em; background: #fff7ea;
  border-left: 4px solid #e67e22; padding: .4em .7em; font-variant-numeric: tabular-nums; }
.figure { overflow: auto; max-width: 100%; }
.figure svg { height: auto; }  /* fit() sizes it: shrunk to fit, never below 70% (it scrolls) */
.figure[hidden] { display: none; }
g[data-state="pending"] { opacity: .25; }
g[data-state="notneeded"] text { fill: #8c8c8c; }
g.node[data-state="filled"] path, g.node[data-state="filled"] polygon,
g.node[data-state="filled"] ellipse { fill: #fde9c9; }
g.current path, g.current polygon, g.current ellipse { stroke: #e67e22; stroke-width: 3; }
g.current polygon { fill: #e67e22; }
g.node.current polygon, g.node.current path { fill-opacity: 1; }
g.current text { font-weight: bold; }
.chart { margin: .5em 0; }
.chart svg { width: 420px; max-width: 100%; height: 180px; border: 1px solid #ddd; }
.chart figcaption { font-size: .85em; color: #555; }
.help { color: #666; font-size: .9em; }
"""

# The script reads the JSON, and renders step k from scratch: the initial labels and
# states, then steps 0..k applied in order, then step k's highlight. No network, no eval.
_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("stepper-data").textContent);
  var steps = data.steps, k = 0, timer = null;
  var figures = Array.prototype.slice.call(document.querySelectorAll(".figure"));
  var slider = document.getElementById("slider");
  var playButton = document.getElementById("play");

  function elements(id) {
    var found = [];
    figures.forEach(function (fig) {
      var el = document.getElementById(fig.getAttribute("data-prefix") + id);
      if (el) { found.push(el); }
    });
    return found;
  }
  function setLabels(labels) {
    Object.keys(labels).forEach(function (id) {
      var lines = labels[id];
      elements(id).forEach(function (el) {
        var texts = el.querySelectorAll("text");
        for (var i = 0; i < texts.length && i < lines.length; i++) {
          texts[i].textContent = lines[i];
        }
      });
    });
  }
  function setStates(states) {
    Object.keys(states).forEach(function (id) {
      elements(id).forEach(function (el) { el.setAttribute("data-state", states[id]); });
    });
  }
  function drawChart(upto) {
    var svg = document.getElementById("chart");
    if (!svg) { return; }
    var ns = svg.namespaceURI, W = 420, H = 180, L = 50, R = 10, T = 10, B = 25;
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    // a loss of exactly 0 (a training that starts at the minimum) is drawn at zeroDrawnAt
    var all = steps.map(function (s) {
      return s.loss === 0 ? data.zeroDrawnAt : s.loss;
    });
    var logs = all.filter(function (v) { return v !== null && v > 0; })
                  .map(function (v) { return Math.log(v) / Math.LN10; });
    var lo = logs.length ? Math.floor(Math.min.apply(null, logs)) : 0;
    var hi = logs.length ? Math.ceil(Math.max.apply(null, logs)) : 1;
    if (hi === lo) { hi = lo + 1; }
    function x(i) { return L + (W - L - R) * (steps.length > 1 ? i / (steps.length - 1) : 0); }
    function y(v) { return T + (H - T - B) * (hi - Math.log(v) / Math.LN10) / (hi - lo); }
    function add(tag, attrs, text) {
      var el = document.createElementNS(ns, tag);
      Object.keys(attrs).forEach(function (a) { el.setAttribute(a, attrs[a]); });
      if (text !== undefined) { el.textContent = text; }
      svg.appendChild(el);
      return el;
    }
    add("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999"});
    add("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"});
    for (var e = lo; e <= hi; e++) {
      add("text", {x: L - 4, y: y(Math.pow(10, e)) + 4, "text-anchor": "end",
                   "font-size": 10}, "1e" + e);
    }
    add("text", {x: (W + L) / 2, y: H - 6, "text-anchor": "middle", "font-size": 10}, "step");
    var points = [];
    for (var i = 0; i <= upto; i++) {
      var v = all[i];
      if (v !== null && v > 0) { points.push(x(i) + "," + y(v)); }
    }
    if (points.length) {
      add("polyline", {points: points.join(" "), fill: "none", stroke: "#1f4e79",
                       "stroke-width": 1.5});
      var last = points[points.length - 1].split(",");
      add("circle", {cx: last[0], cy: last[1], r: 4, fill: "#e67e22"});
    }
  }
  function render() {
    var step = steps[k];
    setLabels(data.initial.labels);
    setStates(data.initial.states);
    document.querySelectorAll("g.current").forEach(function (el) {
      el.classList.remove("current");
    });
    for (var i = 0; i <= k; i++) { setLabels(steps[i].labels); setStates(steps[i].states); }
    figures.forEach(function (fig, i) {
      fig.hidden = data.figures[i].phases.indexOf(step.phase) < 0;
    });
    step.focus.forEach(function (id, i) {
      elements(id).forEach(function (el) {
        el.classList.add("current");
        var fig = el.closest(".figure");
        if (i === 0 && !fig.hidden && fig.scrollWidth > fig.clientWidth) {  // bring it in view
          var box = el.getBoundingClientRect(), frame = fig.getBoundingClientRect();
          fig.scrollLeft += box.left + box.width / 2 - frame.left - frame.width / 2;
        }
      });
    });
    document.querySelectorAll(".phases li").forEach(function (li) {
      li.classList.toggle("active", li.getAttribute("data-phase") === step.phase);
    });
    document.getElementById("step-text").textContent = step.text;
    document.getElementById("counter").textContent = "step " + (k + 1) + " of " + steps.length;
    slider.value = String(k);
    drawChart(k);
  }
  function fit() {  // shrink a wide figure to the page, but not below 70%: then it scrolls
    var room = document.getElementById("stepper").clientWidth;
    figures.forEach(function (fig) {
      var svg = fig.querySelector("svg");
      if (!svg.hasAttribute("data-width")) {
        svg.setAttribute("data-width", String(svg.width.baseVal.value));
      }
      var natural = parseFloat(svg.getAttribute("data-width"));
      svg.style.width = (natural * Math.max(0.7, Math.min(1, room / natural))) + "px";
    });
  }
  function go(to) { k = Math.max(0, Math.min(steps.length - 1, to)); render(); }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    playButton.textContent = "\u25B6 play";
  }
  function play() {
    if (timer !== null) { stop(); return; }
    if (k === steps.length - 1) { go(0); }
    playButton.textContent = "\u23F8 pause";
    timer = setInterval(function () {
      if (k >= steps.length - 1) { stop(); } else { go(k + 1); }
    }, 1200);
  }
  var actions = {
    start: function () { stop(); go(0); }, prev: function () { stop(); go(k - 1); },
    next: function () { stop(); go(k + 1); }, end: function () { stop(); go(steps.length - 1); },
    play: play
  };
  document.querySelectorAll("button[data-go]").forEach(function (button) {
    button.addEventListener("click", function () {
      actions[button.getAttribute("data-go")]();
      button.blur();  // Space must not press the button again: it is the play key
    });
  });
  slider.addEventListener("input", function () { stop(); go(parseInt(slider.value, 10)); });
  var keys = {ArrowRight: "next", ArrowLeft: "prev", Home: "start", End: "end", " ": "play"};
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (event.target === slider && event.key !== " ") { return; }  // the slider's own keys
    var action = keys[event.key];
    if (action) { event.preventDefault(); actions[action](); }
  });
  window.addEventListener("resize", fit);
  fit();
  render();
})();
"""
