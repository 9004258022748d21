"""Measuring fairly: interleaved rounds, the median, warm-up excluded, compile time apart.

Every engine of one case gets the same treatment, in one process:

1. *Warm-up*: one call, timed on its own. For a compiled engine the first call traces
   and compiles; ``compile_s = first call - steady call`` is reported apart and never
   mixed into the speed.
2. *Calibration*: a second call sets how many calls make one timed batch (at least
   ``Settings.min_batch_s`` long), so that microsecond calls are not lost in timer noise.
3. *Interleaved rounds*: round ``r`` times one batch of every engine, in an order
   rotated by ``r``; a slow spell of the machine then hits every engine alike.
4. The figure is the *median* over rounds of the time per call. A call longer than
   ``Settings.long_call_s`` takes part in the first ``Settings.long_rounds`` rounds only.

A case too slow to repeat is *extrapolated* from the engine's largest direct
measurement (cost per unit x units), and marked so. An unrolled compile predicted to
take too long is *skipped*, and says how long it would take. A peer that is not
installed is reported as ``not installed``, never estimated. An exception (micrograd's
``RecursionError`` on deep graphs) is recorded as the engine's result for that case.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Run = Callable[[], Any]  # one complete unit of work; returns its result (blocked on)
Row = dict[str, Any]  # one figure of the report, plain data (JSON as is)


@dataclass(frozen=True)
class Settings:
    """How long and how big: the full run and the ``--quick`` smoke run differ only here."""

    quick: bool
    rounds: int  # interleaved rounds; the median is taken over them
    min_batch_s: float  # one timed batch of calls lasts at least this long
    direct_limit_s: float  # a call predicted longer than this is extrapolated instead
    compile_limit_s: float  # an unrolled compile predicted longer than this is skipped
    long_call_s: float  # a call longer than this is timed in fewer rounds...
    long_rounds: int  # ...this many
    sgd_sizes: tuple[int, ...]  # N, samples of per-sample SGD
    sweep_sizes: tuple[int, ...]  # number of trainings in one sweep
    chain_lengths: tuple[int, ...]  # K, nodes of the tape's chains


FULL = Settings(quick=False, rounds=7, min_batch_s=0.02, direct_limit_s=12.0,
                compile_limit_s=30.0, long_call_s=1.0, long_rounds=3,
                sgd_sizes=(10**3, 10**5, 10**6), sweep_sizes=(10**3, 10**5),
                chain_lengths=(10**2, 10**4, 10**6))
QUICK = Settings(quick=True, rounds=3, min_batch_s=0.002, direct_limit_s=0.25,
                 compile_limit_s=2.0, long_call_s=0.1, long_rounds=1,
                 sgd_sizes=(10**2, 10**3), sweep_sizes=(10, 100),
                 chain_lengths=(10**2, 2 * 10**3))


@dataclass
class Timing:
    """What :func:`measure` learned about one engine on one case."""

    status: str  # "ok", or the name of the exception the engine raised
    seconds: float | None = None  # median time of one call
    first_call_s: float | None = None  # the warm-up call (tracing and compiling included)
    calls_per_round: int = 0
    rounds: int = 0
    result: Any = None  # what the last call returned, for checking
    error: str = ""


def _timed(run: Run, calls: int) -> tuple[float, Any]:
    result = None
    start = time.perf_counter()
    for _ in range(calls):
        result = run()
    return (time.perf_counter() - start) / calls, result


def measure(runs: dict[str, Run], settings: Settings) -> dict[str, Timing]:
    """Time every run of ``runs`` (same case) in interleaved rounds; see the module doc."""
    timings: dict[str, Timing] = {}
    for name, run in runs.items():
        try:
            first, _ = _timed(run, 1)
            steady, result = _timed(run, 1)
        except Exception as error:  # recorded as this engine's result, e.g. RecursionError
            timings[name] = Timing(type(error).__name__, error=str(error)[:100])
            continue
        calls = max(1, math.ceil(settings.min_batch_s / max(steady, 1e-9)))
        rounds = settings.long_rounds if steady > settings.long_call_s else settings.rounds
        timings[name] = Timing("ok", first_call_s=first, calls_per_round=calls,
                               rounds=min(rounds, settings.rounds), result=result)
    live = [name for name, t in timings.items() if t.status == "ok"]
    samples: dict[str, list[float]] = {name: [] for name in live}
    for r in range(settings.rounds):
        shift = r % len(live) if live else 0
        for name in live[shift:] + live[:shift]:
            if r < timings[name].rounds:
                seconds, timings[name].result = _timed(runs[name], timings[name].calls_per_round)
                samples[name].append(seconds)
    for name in live:
        timings[name].seconds = statistics.median(samples[name])
    return timings


# ---------------------------------------------------------------------------------------
# Engines and cases


@dataclass(frozen=True)
class Engine:
    """One contender: ``make(size)`` prepares the data and returns the call to time.

    ``make`` is ``None`` for a peer that is not installed (``install`` says how to get it).
    ``compiled`` engines report their first-call overhead as compile time; ``unrolled``
    ones compile a program that grows with the size, so their compile is predicted and
    skipped past ``Settings.compile_limit_s``.
    """

    name: str
    family: str  # "jaxbackprop", "JAX" or "peer"
    make: Callable[[int], Run] | None
    compiled: bool = False
    unrolled: bool = False
    pytorch: bool = False  # the engine the "x PyTorch" column divides by
    install: str = ""


@dataclass(frozen=True)
class Case:
    """One size of one section: its label, the units one call does, how to check it."""

    size: int
    label: str
    units: float  # steps or nodes in one call
    check: Callable[[Any], tuple[bool, str]]  # result -> (agrees, note)


@dataclass
class _Direct:
    """An engine's largest direct measurement, the base for extrapolating."""

    case: Case
    per_unit_s: float
    compile_s: float | None = field(default=None)


def _row(case: Case, engine: Engine, status: str, **figures: Any) -> Row:
    row: Row = {"case": case.label, "size": case.size, "engine": engine.name,
                "family": engine.family, "status": status, "seconds": None,
                "per_unit_s": None, "rate": None, "compile_s": None, "agrees": None,
                "note": "", "vs_pytorch": None, "vs_best": None, "rounds": 0,
                "calls_per_round": 0, "result": None}
    row.update(figures)
    if row["seconds"] is not None:
        row["per_unit_s"] = row["seconds"] / case.units
        row["rate"] = case.units / row["seconds"]
    return row


def _planned_row(case: Case, engine: Engine, direct: _Direct | None,
                 settings: Settings) -> Row | None:
    """The row of an engine that is not run on this case, or ``None`` if it is run."""
    if engine.make is None:
        return _row(case, engine, "not installed", note=engine.install)
    if direct is None:
        return None
    scale = case.units / direct.case.units
    if engine.unrolled and direct.compile_s is not None:
        predicted = direct.compile_s * scale
        if predicted > settings.compile_limit_s:
            return _row(case, engine, "skipped",
                        note=f"unrolled program: compile {direct.compile_s:.2g} s at "
                             f"{direct.case.label} grows with its length, about "
                             f"{predicted:.0f} s or more here")
    if direct.per_unit_s * case.units > settings.direct_limit_s:
        return _row(case, engine, "extrapolated", seconds=direct.per_unit_s * case.units,
                    note=f"extrapolated from {direct.case.label}")
    return None


def _measured_row(case: Case, engine: Engine, timing: Timing) -> Row:
    if timing.status == "RecursionError":
        return _row(case, engine, timing.status,
                    note=f"under the recursion limit {sys.getrecursionlimit()}")
    if timing.status != "ok":
        return _row(case, engine, timing.status, note=timing.error)
    assert timing.seconds is not None and timing.first_call_s is not None
    compile_s = max(timing.first_call_s - timing.seconds, 0.0) if engine.compiled else None
    agrees, note = case.check(timing.result)
    return _row(case, engine, "ok", seconds=timing.seconds, compile_s=compile_s,
                agrees=agrees, note=note, rounds=timing.rounds,
                calls_per_round=timing.calls_per_round, result=_scalar(timing.result))


def _scalar(value: Any) -> float | None:
    """A one-number result as a float (for the report), else ``None``."""
    array = np.asarray(value)
    return float(array.reshape(())) if array.size == 1 else None


def add_ratios(rows: list[Row], pytorch: str | None) -> None:
    """``vs_pytorch = t_pytorch / t`` and ``vs_best = t_best_peer / t`` (above 1: faster).

    The best peer is the fastest engine of the case that is not jaxbackprop's own:
    a peer or JAX itself. Extrapolated figures count; missing ones do not.
    """
    timed = [r for r in rows if r["seconds"] is not None]
    peer_times = [r["seconds"] for r in timed if r["family"] != "jaxbackprop"]
    t_best = min(peer_times, default=None)
    t_pytorch = next((r["seconds"] for r in timed if r["engine"] == pytorch), None)
    for r in timed:
        if t_best is not None:
            r["vs_best"] = t_best / r["seconds"]
        if t_pytorch is not None:
            r["vs_pytorch"] = t_pytorch / r["seconds"]


def run_cases(engines: list[Engine], cases: list[Case], settings: Settings,
              progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every engine on every case (cases in increasing size), as rows with ratios."""
    directs: dict[str, _Direct] = {}
    pytorch = next((e.name for e in engines if e.pytorch), None)
    rows: list[Row] = []
    for case in cases:
        if progress is not None:
            progress(case.label)
        planned = {e.name: _planned_row(case, e, directs.get(e.name), settings) for e in engines}
        runs = {e.name: e.make(case.size) for e in engines
                if planned[e.name] is None and e.make is not None}
        timings = measure(runs, settings)
        case_rows = []
        for engine in engines:
            row = planned[engine.name]
            if row is None:
                row = _measured_row(case, engine, timings[engine.name])
                if row["status"] == "ok":
                    directs[engine.name] = _Direct(case, row["per_unit_s"], row["compile_s"])
                else:  # never extrapolate past a failure: run the next size for real
                    directs.pop(engine.name, None)
            case_rows.append(row)
        add_ratios(case_rows, pytorch)
        rows += case_rows
    return rows
