"""jaxbackprop beside PyTorch eager, micrograd, HIPS autograd, NumPy and JAX itself.

    report = benchmark.run(benchmark.QUICK)       # plain data, JSON as is
    print(benchmark.to_markdown(report))          # one table per case

The method, the same for every engine of a case, in one process:

1. *Warm-up*: the first call is timed on its own; for a compiled engine
   ``compile_s = first call - median call`` is reported apart, never mixed into the speed.
2. *Batches*: a second call sets how many calls make one timed batch (at least
   ``Settings.min_batch_s``), so that microsecond calls are not lost in timer noise.
3. *Interleaved rounds*: round ``r`` times one batch of every engine, in an order rotated
   by ``r``, so that a slow spell of the machine hits every engine alike. A call longer
   than ``Settings.long_call_s`` takes part in ``Settings.long_rounds`` rounds only.
4. Each figure is the *median* over rounds, with its spread: the inter-quartile range and
   the minimum and maximum.
5. Every result is checked against a float64 reference before its time is reported.

A peer that is not installed is reported as ``not installed``; an engine that raises
(micrograd's ``RecursionError`` on deep graphs) has the exception as its result.

The cases are in :mod:`jaxbackprop.benchmark.cases`; ``jaxbackprop bench`` runs them.
``import jaxbackprop`` never imports this package.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

Run = Callable[[], Any]  # one call of an engine on a case; returns its result (blocked on)
Check = Callable[[Any], str]  # a result -> "" if it agrees with the reference, else why not
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """How long and how big: the full run and ``--quick`` differ only here."""

    quick: bool
    rounds: int  # interleaved rounds; the figures are taken over them
    min_batch_s: float  # one timed batch of calls lasts at least this long
    long_call_s: float  # a call longer than this is timed in fewer rounds...
    long_rounds: int  # ...this many
    chains: tuple[int, ...]  # nodes of the eager chains (the last for the tape only)
    jit_chains: tuple[int, ...]  # nodes of the unrolled, compiled chains
    sgd_samples: int  # N of per-sample SGD, sequential against parallel
    sweeps: tuple[int, ...]  # trainings in one sweep


FULL = Settings(quick=False, rounds=7, min_batch_s=0.02, long_call_s=1.0, long_rounds=3,
                chains=(10**2, 10**4, 10**6), jit_chains=(10**2, 10**4), sgd_samples=10**6,
                sweeps=(10**3, 10**5))
QUICK = Settings(quick=True, rounds=3, min_batch_s=0.002, long_call_s=0.1, long_rounds=1,
                 chains=(10**2, 10**3, 10**4), jit_chains=(10**2,), sgd_samples=10**3,
                 sweeps=(10, 100))


@dataclass(frozen=True)
class Engine:
    """One contender on one case: ``make()`` prepares the data and returns the call to time
    (``None`` for a peer that is not installed, with ``note`` saying how to install it)."""

    name: str
    make: Callable[[], Run] | None
    compiled: bool = False
    note: str = ""


@dataclass(frozen=True)
class Case:
    """Engines side by side on one workload of ``units`` steps or nodes per call."""

    section: str
    label: str
    units: int
    unit: str  # "step" or "node"
    engines: tuple[Engine, ...]
    check: Check
    baseline: str  # the engine every other one is divided by ("x baseline")


def _timed(run: Run, calls: int) -> tuple[float, Any]:
    result = None
    start = time.perf_counter()
    for _ in range(calls):
        result = run()
    return (time.perf_counter() - start) / calls, result


def _quantiles(samples: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); all three the value for one sample."""
    if len(samples) == 1:
        return samples[0], samples[0], samples[0]
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, median, q3


def measure(case: Case, settings: Settings) -> list[dict[str, Any]]:
    """Every engine of ``case`` in interleaved rounds; one row (plain data) per engine."""
    rows: dict[str, dict[str, Any]] = {}
    runs: dict[str, Run] = {}
    first: dict[str, float] = {}
    calls: dict[str, int] = {}
    rounds: dict[str, int] = {}
    for engine in case.engines:
        row: dict[str, Any] = {"engine": engine.name, "status": "ok", "note": engine.note}
        rows[engine.name] = row
        if engine.make is None:
            row["status"] = "not installed"
            continue
        try:
            run = engine.make()
            first[engine.name], _ = _timed(run, 1)
            steady, _ = _timed(run, 1)
        except Exception as error:  # the engine's result on this case, e.g. RecursionError
            row.update(status=type(error).__name__, note=str(error).splitlines()[0][:120])
            continue
        runs[engine.name] = run
        calls[engine.name] = max(1, round(settings.min_batch_s / max(steady, 1e-9)))
        rounds[engine.name] = (settings.long_rounds if steady > settings.long_call_s
                               else settings.rounds)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    names = list(runs)
    for r in range(settings.rounds):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if len(samples[name]) < rounds[name]:
                seconds, results[name] = _timed(runs[name], calls[name])
                samples[name].append(seconds)
    for engine in case.engines:
        if engine.name not in runs:
            continue
        row = rows[engine.name]
        q1, median, q3 = _quantiles(samples[engine.name])
        wrong = case.check(results[engine.name])
        row.update(
            status="ok" if not wrong else "WRONG", note=wrong or row["note"],
            seconds=median, q1=q1, q3=q3, min=min(samples[engine.name]),
            max=max(samples[engine.name]), per_unit=median / case.units,
            rate=case.units / median, rounds=len(samples[engine.name]),
            calls_per_round=calls[engine.name],
            compile_s=max(first[engine.name] - median, 0.0) if engine.compiled else None)
    base = rows[case.baseline].get("seconds")
    for row in rows.values():
        if base is not None and row.get("seconds"):
            row["vs_baseline"] = base / row["seconds"]
    return list(rows.values())


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("jax", "jaxlib", "optax", "numpy", "torch", "micrograd", "autograd"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _cpu() -> str:
    """The CPU's model name and core count, as far as the system says."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def run(settings: Settings = FULL, sections: Sequence[str] | None = None,
        command: str = "jaxbackprop bench", progress: Progress | None = None) -> dict[str, Any]:
    """Run the cases of the named ``sections`` (default: all) and return the report.

    ``progress(label)`` is called before each case. The report holds ``meta`` (machine,
    versions, settings) and ``cases``, each with one row per engine.

    Raises:
      ValueError: a name in ``sections`` is not one of :data:`cases.SECTIONS`.
    """
    import jax

    from jaxbackprop.benchmark import cases

    names = list(cases.SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in cases.SECTIONS]
    if unknown:
        raise ValueError(f"sections: unknown {', '.join(unknown)}; "
                         f"expected some of {', '.join(cases.SECTIONS)}")
    start = time.perf_counter()
    report_cases = []
    for name in names:
        for case in cases.SECTIONS[name](settings):
            if progress is not None:
                progress(f"{case.section}: {case.label}")
            report_cases.append({"section": case.section, "label": case.label,
                                 "unit": case.unit, "units": case.units,
                                 "baseline": case.baseline, "rows": measure(case, settings)})
    meta = {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu(), "device": str(jax.devices()[0]),
        "python": platform.python_version(), "versions": _versions(),
        "settings": dataclasses.asdict(settings), "wall_s": time.perf_counter() - start,
    }
    return {"meta": meta, "cases": report_cases}


# ---------------------------------------------------------------------------------------
# The report as Markdown


def format_seconds(seconds: float) -> str:
    """``0.0000084`` -> ``8.4 µs``: three significant digits in the largest fitting unit."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_rate(rate: float) -> str:
    """``117e6`` -> ``117M``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def _cells(row: dict[str, Any], unit: str) -> list[str]:
    if "seconds" not in row:
        return [row["engine"], row["status"], "", "", "", "", "", row["note"]]
    per = row["per_unit"] / row["seconds"]  # scales a call's figures to one unit
    ratio = row.get("vs_baseline")
    return [
        row["engine"], format_seconds(row["per_unit"]),
        f"{format_seconds(row['q1'] * per)} – {format_seconds(row['q3'] * per)}",
        f"{format_seconds(row['min'] * per)} – {format_seconds(row['max'] * per)}",
        format_rate(row["rate"]) + f" {unit}s/s",
        "" if row["compile_s"] is None else format_seconds(row["compile_s"]),
        "" if ratio is None else f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.3g}x",
        row["note"] if row["status"] == "ok" else f"**{row['status']}**: {row['note']}",
    ]


def to_markdown(report: dict[str, Any]) -> str:
    """The report's cases as Markdown tables: median per step or node, its spread over the
    rounds (inter-quartile range, min - max), rate, compile time, ratio to the baseline."""
    meta = report["meta"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines = ["# Benchmarks", "",
             f"`{meta['command']}` on {meta['cpu']}, {meta['device']}, Python {meta['python']}; "
             f"{versions}; {meta['date']}, {meta['wall_s']:.0f} s.", ""]
    for case in report["cases"]:
        unit = case["unit"]
        lines += [f"## {case['section']}: {case['label']}", "",
                  f"| engine | median per {unit} | IQR | min – max | rate | compile "
                  f"| x {case['baseline']} | note |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_cells(row, unit)) + " |" for row in case["rows"]]
        lines.append("")
    return "\n".join(lines)


__all__ = ["run", "to_markdown", "measure", "Settings", "Engine", "Case", "FULL", "QUICK"]
