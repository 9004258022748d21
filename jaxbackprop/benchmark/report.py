"""The benchmark's report as Markdown: one table per section, ratios beside each figure."""

from __future__ import annotations

from typing import Any

from jaxbackprop.benchmark.harness import Row

_PREFIXES = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def format_seconds(seconds: float) -> str:
    """``0.0000084`` -> ``8.4 µs``: three significant digits in the largest fitting unit."""
    for scale, unit in _PREFIXES:
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_rate(rate: float) -> str:
    """``117e6`` -> ``117M``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def format_ratio(ratio: float | None) -> str:
    """``126.4`` -> ``126x``, ``0.0123`` -> ``0.012x``; empty when there is nothing to divide by."""
    if ratio is None:
        return ""
    if ratio >= 100:
        return f"{ratio:.0f}x"
    return f"{ratio:.3g}x" if ratio >= 1 else f"{ratio:.2g}x"


def _cells(row: Row) -> list[str]:
    status = row["status"]
    if row["seconds"] is None:
        return [status, "", "", "", "", "", row["note"]]
    mark = "~" if status == "extrapolated" else ""
    compile_s = row["compile_s"]
    compile_text = ("" if compile_s is None else "<1 ms" if compile_s < 1e-3
                    else format_seconds(compile_s))
    note = row["note"]
    if row["agrees"] is False:
        note = f"**wrong result**: {note}"
    return [mark + format_seconds(row["seconds"]), mark + format_seconds(row["per_unit_s"]),
            mark + format_rate(row["rate"]), compile_text, format_ratio(row["vs_pytorch"]),
            format_ratio(row["vs_best"]), note]


def section_table(section: dict[str, Any]) -> str:
    """One section as a Markdown table."""
    unit = section["unit"]
    header = ["case", "engine", "time per call", f"per {unit}", f"{unit}s/s", "compile",
              "x PyTorch", "x best peer", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in section["rows"]:
        lines.append("| " + " | ".join([row["case"], row["engine"], *_cells(row)]) + " |")
    return "\n".join(lines)


def _meta_lines(meta: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    settings = meta["settings"]
    return [
        f"Machine: {meta['machine']}; JAX device {meta['device']}; Python {meta['python']}.",
        f"Versions: {versions}.",
        f"Command: `{meta['command']}`; {meta['wall_s']:.0f} s in all; {meta['date']}.",
        "",
        f"Each figure is the median of {settings['rounds']} interleaved rounds in one process "
        f"({settings['long_rounds']} for calls longer than {settings['long_call_s']:g} s), "
        "warm-up excluded. *compile* is the first call minus a steady call. "
        "*x PyTorch* is PyTorch eager's time divided by this time, *x best peer* the "
        "time of the fastest engine that is not jaxbackprop's (a peer or JAX itself) divided "
        "by this time: above 1x is faster. "
        "`~` marks a figure extrapolated linearly from a smaller size. Every result is "
        "checked against an independent float64 reference (*note*).",
    ]


def targets_table(targets: list[dict[str, Any]]) -> str:
    """The issues' speed targets as a Markdown table."""
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["| issue | target | measured | |", "|---|---|---|---|"]
    lines += [f"| {t['issue']} | {t['goal']} | {t['measured']} | {verdict[t['met']]} |"
              for t in targets]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    """The whole report: what ran where, each section's table, the targets, the reading."""
    lines = ["# Benchmarks", "", *_meta_lines(report["meta"])]
    for number, section in enumerate(report["sections"], start=1):
        lines += ["", f"## {number}. {section['title']}", "", section_table(section)]
    lines += ["", "## Targets", "", targets_table(report["targets"])]
    if report["reading"]:
        lines += ["", "## What the numbers mean"]
        for paragraph in report["reading"]:
            lines += ["", paragraph]
    return "\n".join(lines) + "\n"
