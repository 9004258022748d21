"""jaxbackprop against PyTorch eager, micrograd, HIPS autograd and JAX itself, side by side.

    report = benchmark.run(benchmark.QUICK)       # plain data, JSON as is
    print(benchmark.to_markdown(report))          # one table per section

All figures of one report come from one process on one machine: speed claims hold only
as ratios measured that way. How each figure is measured is in
:mod:`~jaxbackprop.benchmark.harness`; the peers' code in
:mod:`~jaxbackprop.benchmark.peers`; the four measurements in
:mod:`~jaxbackprop.benchmark.sections`. The command is ``jaxbackprop bench``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any, Callable, Sequence

import jax.numpy as jnp

from jaxbackprop.benchmark import summary
from jaxbackprop.benchmark.harness import FULL, QUICK, Settings
from jaxbackprop.benchmark.report import to_markdown
from jaxbackprop.benchmark.sections import SECTIONS

_VERSIONED = ("jax", "jaxlib", "optax", "numpy", "torch", "micrograd", "autograd")


def _versions() -> dict[str, str]:
    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _machine() -> str:
    """The CPU's model name and core count, as far as the system says."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()}"


def run(settings: Settings = FULL, sections: Sequence[str] | None = None,
        command: str = "jaxbackprop bench",
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the named ``sections`` (default: all, in order) and return the report.

    ``progress(label)`` is called before each case, e.g. to drive a progress bar. The
    report holds ``meta`` (machine, versions, settings), ``sections`` (their rows),
    ``targets`` (the issues' speed targets, met or not) and ``reading`` (what the numbers
    mean, as paragraphs).
    Raises ``ValueError`` naming an unknown section.
    """
    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"sections: unknown {', '.join(unknown)}; "
                         f"expected some of {', '.join(SECTIONS)}")
    start = time.perf_counter()
    results = []
    for name in names:
        def labelled(case: str, section: str = name) -> None:
            if progress is not None:
                progress(f"{section} {case}")
        results.append(SECTIONS[name](settings, labelled))
    meta = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "device": str(jnp.zeros(()).device),
        "python": platform.python_version(),
        "recursion_limit": sys.getrecursionlimit(),
        "versions": _versions(),
        "settings": dataclasses.asdict(settings),
        "wall_s": time.perf_counter() - start,
    }
    report: dict[str, Any] = {"meta": meta, "sections": results}
    report["targets"] = summary.check(report)
    report["reading"] = summary.explain(report)
    return report


__all__ = ["run", "to_markdown", "Settings", "FULL", "QUICK", "SECTIONS"]
