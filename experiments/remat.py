"""What the backward pass keeps: the tape's residuals, JAX's, and jax.checkpoint's trade.

Reverse mode runs the function forwards, then the chain rule backwards, and the backward
pass needs values of the forward one (``d tanh(a)/da = 1 - tanh(a)^2`` needs ``tanh(a)``):
those *residuals* are kept in memory between the two passes. This script measures them
on :mod:`jaxbackprop.mlp` networks:

* the hand-written tape keeps every equation's inputs and output (it records all of them,
  whatever its rules need): the bytes per equation, for the 2-16-16-1 MLP;
* JAX keeps only what its rules use, and says what in its own report
  (``jax.ad_checkpoint.print_saved_residuals``), printed here for the same MLP, plain and
  with ``jax.checkpoint`` on each hidden layer (the layer is recomputed in the backward
  pass instead of saved) and on the whole network;
* against depth: the bytes kept by the tape, by JAX, and by JAX with each checkpoint, and
  what the recomputation costs, measured: the forward and backward passes compiled
  apart (so XLA cannot merge them), the arrays the pullback holds, XLA's flop counts and
  the times.

    python experiments/remat.py [--depths 8] [--width 128] [--points 512] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import Results, best_time, parser, run, table
from jax.ad_checkpoint import print_saved_residuals

from jaxbackprop import mlp
from jaxbackprop.cli.common import positive_int
from jaxbackprop.tape.core import Tape, recording

NAME = "remat"
ROOT = Path(__file__).resolve().parent.parent
KIB = 1024.0


def plain(params: mlp.Params, x: Any, y: Any) -> Any:
    """The MLP's loss: JAX saves what its rules need."""
    return mlp.loss(params, x, y)


def per_layer(params: mlp.Params, x: Any, y: Any) -> Any:
    """The loss with ``jax.checkpoint`` on every hidden layer: each is recomputed backwards."""
    return mlp.logistic_loss(mlp.apply(params, x, hidden=jax.checkpoint(mlp.layer)), y)


def whole(params: mlp.Params, x: Any, y: Any) -> Any:
    """The loss with ``jax.checkpoint`` on the whole network: only its inputs are kept."""
    return mlp.logistic_loss(jax.checkpoint(mlp.apply)(params, x), y)


VARIANTS: dict[str, Callable[..., Any]] = {
    "jax.grad": plain,
    "checkpoint each layer": per_layer,
    "checkpoint the network": whole,
}
RESIDUAL = re.compile(r"^(?P<dtype>[a-z]+)(?P<bits>\d*)\[(?P<shape>[\d,]*)\] (?P<source>.*)$")


def jax_residuals(f: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """JAX's saved-residuals report for ``jax.vjp(f, *args)``, as printed by
    ``jax.ad_checkpoint.print_saved_residuals`` (one residual a line, ``f32[200,16] output
    of tanh from ...``), and read back: the number and bytes of the residuals the forward
    pass made (``count``, ``bytes``), and the bytes of all of them, arguments included.
    """
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print_saved_residuals(f, *args)
    report = printed.getvalue().replace(f"{ROOT}/", "")
    count = made = total = 0
    for line in report.splitlines():
        match = RESIDUAL.match(line)
        if match is None:
            raise RuntimeError(f"print_saved_residuals printed a line this script cannot read: "
                               f"{line!r}")
        itemsize = int(match["bits"]) // 8 if match["bits"] else 1  # 'bool' is one byte
        size = itemsize * int(np.prod([int(n) for n in match["shape"].split(",") if n]))
        total += size
        if not match["source"].startswith("from the argument"):
            count, made = count + 1, made + size
    return {"report": report, "count": count, "bytes": made, "bytes_with_arguments": total}


def measure(f: Callable[..., Any], params: mlp.Params, x: Any, y: Any,
            repeats: int) -> dict[str, float]:
    """The two passes compiled apart, so that XLA cannot merge them, and measured.

    The forward pass ``jax.vjp`` returns the pullback, whose arrays are the residuals it
    really keeps (their bytes: ``held``). The backward pass is the pullback alone: XLA's
    flop and transcendental counts and temporary memory for it, and the best time of
    ``repeats`` calls of each pass, in milliseconds.
    """
    forward = jax.jit(lambda p, x, y: jax.vjp(lambda p: f(p, x, y), p))
    value, pullback = forward(params, x, y)
    held = sum(leaf.nbytes for leaf in jax.tree.leaves(pullback))
    backward = jax.jit(lambda pullback: pullback(jnp.ones_like(value))[0])
    compiled = backward.lower(pullback).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    memory = compiled.memory_analysis()
    return {"held_bytes": float(held),
            "backward_flops": float(analysis.get("flops", 0.0)),
            "backward_transcendentals": float(analysis.get("transcendentals", 0.0)),
            "backward_temp_bytes": float(getattr(memory, "temp_size_in_bytes", np.nan)),
            "forward_ms": 1e3 * best_time(lambda: forward(params, x, y), repeats),
            "backward_ms": 1e3 * best_time(lambda: compiled(pullback), repeats)}


def record(f: Callable[..., Any], *args: Any) -> Tape:
    """``f(*args)`` recorded on a tape (NumPy values), the tape returned for inspection."""
    leaves, treedef = jax.tree.flatten(jax.tree.map(np.asarray, args))
    with recording() as tape:
        f(*jax.tree.unflatten(treedef, [tape.new_var(leaf) for leaf in leaves]))
    return tape


def tape_residuals(tape: Tape) -> list[list[Any]]:
    """Per equation: its primitive, its inputs' and output's shapes, and the bytes of the
    values it keeps that no earlier equation and no argument already holds.

    The tape keeps every equation's output, and its inputs' values; an input that is a
    variable is an earlier output (the same array, kept once), so each equation adds its
    output, plus any constant it made on the way (``1.0 + ...`` keeps the 1.0).
    """
    seen = {id(value) for eq in tape.equations  # the arguments: the caller holds them anyway
            for parent, value in zip(eq.parents, eq.inputs, strict=True)
            if parent is not None and parent < tape.num_inputs}
    rows = []
    for i, eq in enumerate(tape.equations):
        added = 0
        for value in (*eq.inputs, eq.out):
            if id(value) not in seen:
                seen.add(id(value))
                added += np.asarray(value).nbytes
        rows.append([tape.num_inputs + i, eq.primitive.name,
                     " ".join(str(np.shape(v)) for v in eq.inputs), str(np.shape(eq.out)), added])
    return rows


def figure(equations: list[list[Any]], reports: dict[str, dict[str, Any]], depths: list[int],
           kept: dict[str, list[float]], measured: dict[str, list[dict[str, float]]], width: int,
           points: int) -> Any:
    """Three panels: the tape's bytes per equation; bytes kept against depth; the backward
    pass's cost relative to plain ``jax.grad``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_eq, ax_mem, ax_cost = fig.subplots(1, 3, width_ratios=(1.25, 1, 1))
    ax_eq.bar(range(len(equations)), [row[-1] / KIB for row in equations], color="#9e9ac8")
    ax_eq.set_xticks(range(len(equations)), [row[1] for row in equations], rotation=70,
                     fontsize=7)
    ax_eq.set_ylabel("KiB kept until the backward pass")
    totals = [f"tape: {sum(row[-1] for row in equations) / KIB:.1f} KiB"]
    totals += [f"{label}: {r['bytes'] / KIB:.1f} KiB" for label, r in reports.items()]
    ax_eq.text(0.97, 0.95, "kept in all\n" + "\n".join(totals), transform=ax_eq.transAxes,
               ha="right", va="top", fontsize=8,
               bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})
    ax_eq.set_title("the tape: every equation's output is kept\n"
                    "(the 2-16-16-1 MLP's loss on 200 points, equation by equation)", fontsize=10)
    styles = {"tape": ("#6a51a3", "o"), "jax.grad": ("#2171b5", "s"),
              "checkpoint each layer": ("#238b45", "^"), "checkpoint the network": ("#d94801", "v")}
    for label, values in kept.items():
        colour, marker = styles[label]
        ax_mem.plot(depths, np.asarray(values) / KIB, marker=marker, color=colour, label=label)
    ax_mem.set_xlabel("hidden layers")
    ax_mem.set_ylabel("KiB made by the forward pass and kept")
    ax_mem.set_title(f"memory kept for the backward pass\n(width {width}, {points} points; "
                     "JAX's from print_saved_residuals)", fontsize=10)
    ax_mem.legend(fontsize=8)
    base = measured["jax.grad"]
    for label, rows in measured.items():
        colour, marker = styles[label]
        flops = [r["backward_flops"] / b["backward_flops"] for r, b in zip(rows, base, strict=True)]
        ax_cost.plot(depths, flops, marker=marker, color=colour, label=f"{label}: flops")
        times = [r["backward_ms"] / b["backward_ms"] for r, b in zip(rows, base, strict=True)]
        ax_cost.plot(depths, times, marker=marker, color=colour, ls=":", alpha=0.6,
                     label=f"{label}: time")
    ax_cost.set_xlabel("hidden layers")
    ax_cost.set_ylabel("backward pass, relative to jax.grad's")
    ax_cost.set_title("what the recomputation costs (measured)\n"
                      "solid: XLA's flop count, dotted: time (noisy)", fontsize=10)
    ax_cost.legend(fontsize=7)
    for ax in (ax_eq, ax_mem, ax_cost):
        ax.grid(alpha=0.3)
    return fig


def main(args: argparse.Namespace, results: Results) -> int:
    if args.quick:
        args.depths, args.width, args.points, args.repeats = 2, 16, 64, 2
    # The 2-16-16-1 MLP on two moons: what each engine keeps, equation by equation.
    x, y = mlp.two_moons(200)
    params = mlp.init(jax.random.key(0), (2, 16, 16, 1))
    equations = tape_residuals(record(mlp.loss, params, x, y))
    print("the tape, recording the 2-16-16-1 MLP's loss on 200 points: what each equation keeps")
    print(table(("eq", "primitive", "inputs", "output", "bytes kept"), equations))
    print(f"total: {sum(r[-1] for r in equations) / KIB:.1f} KiB in {len(equations)} equations\n")
    reports = {}
    for label, f in VARIANTS.items():
        reports[label] = jax_residuals(f, params, x, y)
        print(f"JAX's saved residuals, {label} (jax.ad_checkpoint.print_saved_residuals):")
        print(reports[label]["report"].rstrip())
        print(f"-> {reports[label]['count']} residuals made by the forward pass, "
              f"{reports[label]['bytes'] / KIB:.1f} KiB\n")

    # Against depth: memory kept, and what recomputing it costs.
    depths = list(range(1, args.depths + 1))
    kept: dict[str, list[float]] = {"tape": [], **{label: [] for label in VARIANTS}}
    measured: dict[str, list[dict[str, float]]] = {label: [] for label in VARIANTS}
    x, y = mlp.two_moons(args.points)
    rows = []
    for depth in depths:
        params = mlp.init(jax.random.key(depth), (2, *[args.width] * depth, 1))
        kept["tape"].append(sum(r[-1] for r in tape_residuals(record(mlp.loss, params, x, y))))
        for label, f in VARIANTS.items():
            report = jax_residuals(f, params, x, y)
            kept[label].append(report["bytes"])
            m = measure(f, params, x, y, args.repeats)
            measured[label].append(m)
            rows.append([depth, label, report["count"], report["bytes"] / KIB,
                         m["held_bytes"] / KIB,
                         m["backward_flops"] / 1e6, m["backward_transcendentals"] / 1e3,
                         m["backward_temp_bytes"] / KIB, m["forward_ms"], m["backward_ms"]])
    header = ("hidden layers", "variant", "residuals", "KiB made", "KiB held (measured)",
              "backward Mflop", "backward k-transc.", "backward temp KiB",
              "forward ms", "backward ms")
    print(f"against depth (width {args.width}, {args.points} points); the tape keeps "
          + ", ".join(f"{v / KIB:.0f}" for v in kept["tape"]) + " KiB")
    print(table(header, [[*row[:3], *(f"{v:.4g}" for v in row[3:])] for row in rows]))
    base = measured["jax.grad"][-1]
    for label in list(VARIANTS)[1:]:
        last = measured[label][-1]
        print(f"at {depths[-1]} hidden layers, {label}: keeps {kept[label][-1] / KIB:.0f} KiB "
              f"instead of {kept['jax.grad'][-1] / KIB:.0f} KiB; its backward pass does "
              f"{last['backward_flops'] / base['backward_flops']:.2f}x the flops and "
              f"{last['backward_transcendentals'] / 1e3:.3g}k transcendentals instead of "
              f"{base['backward_transcendentals'] / 1e3:.3g}k, in "
              f"{last['backward_ms'] / base['backward_ms']:.2f}x the time")

    results.figure("remat.png", figure(equations, reports, depths, kept, measured,
                                        args.width, args.points))
    results.csv("tape_equations.csv", ("equation", "primitive", "input shapes", "output shape",
                                       "bytes kept"), equations)
    results.csv("depth.csv", header, rows)
    for label, report in reports.items():
        results.text(f"saved_residuals_{label.replace(' ', '_').replace('.', '_')}.txt",
                     report["report"])
    results.json("summary.json", {
        "mlp_2_16_16_1": {"tape_bytes": sum(r[-1] for r in equations),
                          "tape_equations": len(equations),
                          **{label: {"residuals": r["count"], "bytes": r["bytes"]}
                             for label, r in reports.items()}},
        "depths": depths, "width": args.width, "points": args.points,
        "bytes_kept": kept, "measured": measured})
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--depths", type=positive_int, default=8,
                   help="hidden layers from 1 to this, 2 with --quick (default: %(default)s)")
    p.add_argument("--width", type=positive_int, default=128,
                   help="units per hidden layer, 16 with --quick (default: %(default)s)")
    p.add_argument("--points", type=positive_int, default=512,
                   help="data points (the batch), 64 with --quick (default: %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=10,
                   help="timed calls of each pass, 2 with --quick (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
