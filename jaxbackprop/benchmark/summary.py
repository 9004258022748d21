"""What a report says: the issues' speed targets checked, and the numbers explained.

:func:`check` tests the speed targets of the tape (issue 3), training (issue 4) and
benchmark (issue 6) issues. Each target reads its figure from the rows of one run
(never from a constant), says what it measured, and whether the goal is met; ``met``
is ``None`` when the figure is missing (a peer not installed, a section not run).
:func:`explain` writes what the numbers mean, with the run's own figures in it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from jaxbackprop.benchmark import sections as s
from jaxbackprop.benchmark.harness import FULL, Row
from jaxbackprop.benchmark.report import format_rate, format_ratio, format_seconds

Report = dict[str, Any]
Figure = tuple[float, str] | None  # (value compared with the goal, how it was measured)

FULL_RUN_LIMIT_S = 600.0  # issue 6: the full run ends within 10 minutes


def _rows(report: Report, section: str, engine: str) -> list[Row]:
    """The measured rows of ``engine`` in ``section``, smallest case first."""
    for sec in report["sections"]:
        if sec["key"] == section:
            return [r for r in sec["rows"] if r["engine"] == engine and r["status"] == "ok"]
    return []


def _largest(report: Report, section: str, engine: str) -> Row | None:
    rows = _rows(report, section, engine)
    return rows[-1] if rows else None


def _pairs(report: Report, section: str, a: str, b: str) -> list[tuple[Row, Row]]:
    """Rows of engines ``a`` and ``b`` measured on the same case."""
    others = {r["case"]: r for r in _rows(report, section, b)}
    return [(r, others[r["case"]]) for r in _rows(report, section, a) if r["case"] in others]


def tape_per_node(report: Report) -> Figure:
    row = _largest(report, "chain", s.TAPE_EAGER)
    return None if row is None else (row["per_unit_s"], f"{format_seconds(row['per_unit_s'])}"
                                     f"/node at {row['case']}")


def tape_vs_micrograd(report: Report) -> Figure:
    pairs = _pairs(report, "chain", s.TAPE_EAGER, s.MICROGRAD)
    if not pairs:
        return None
    tape, micrograd = pairs[-1]
    ratio = micrograd["seconds"] / tape["seconds"]
    failed = sorted({r["status"] for sec in report["sections"] if sec["key"] == "chain"
                     for r in sec["rows"] if r["engine"] == s.MICROGRAD
                     and r["status"] not in ("ok", "extrapolated")})
    deeper = f" (micrograd: {', '.join(failed)} on longer chains)" if failed else ""
    return ratio, f"{format_ratio(ratio)} at {tape['case']}{deeper}"


def tape_jit_vs_jax_jit(report: Report) -> Figure:
    pairs = _pairs(report, "chain", s.TAPE_JIT, s.JAX_JIT)
    if not pairs:
        return None
    ratio, case = max((t["seconds"] / j["seconds"], t["case"]) for t, j in pairs)
    return ratio, f"worst {ratio:.2f}x the time of jax.jit(jax.grad), at {case}"


def lecture_vs_pytorch(report: Report) -> Figure:
    row = _largest(report, "lecture", s.FUSED)
    if row is None or row["vs_pytorch"] is None:
        return None
    return row["vs_pytorch"], f"{format_ratio(row['vs_pytorch'])} per step"


def _rate_of(section: str, engine: str) -> Callable[[Report], Figure]:
    def figure(report: Report) -> Figure:
        row = _largest(report, section, engine)
        return None if row is None else (row["rate"], f"{format_rate(row['rate'])} steps/s "
                                          f"at {row['case']}")
    return figure


def sweep_rate(report: Report) -> Figure:
    rows = [r for r in _rows(report, "sweep", s.SWEEP) if r["size"] == 1000]
    return None if not rows else (rows[0]["rate"], f"{format_rate(rows[0]['rate'])} steps/s")


def full_run_time(report: Report) -> Figure:
    """The wall time, for a run of every section with the full settings only."""
    meta = report["meta"]
    every_section = [sec["key"] for sec in report["sections"]] == list(s.SECTIONS)
    if meta["settings"] != dataclasses.asdict(FULL) or not every_section:
        return None
    return meta["wall_s"], f"{meta['wall_s']:.0f} s"


@dataclass(frozen=True)
class Target:
    """One goal of an issue: ``met(value)`` for the ``figure`` a report gives."""

    issue: int
    goal: str
    figure: Callable[[Report], Figure]
    met: Callable[[float], bool]


TARGETS: tuple[Target, ...] = (
    Target(3, "tape eager on Python floats: at most 1 µs per node on long chains",
           tape_per_node, lambda t: t <= 1e-6),
    Target(3, "tape eager: at least 2x faster than micrograd", tape_vs_micrograd,
           lambda r: r >= 2.0),
    Target(3, "jax.jit(tape.grad(f)) within 1.2x of jax.jit(jax.grad(f))", tape_jit_vs_jax_jit,
           lambda r: r <= 1.2),
    Target(4, "the lecture's 30 steps: fused trainer at least 150x faster per step than "
              "PyTorch eager", lecture_vs_pytorch, lambda r: r >= 150),
    Target(4, "per-sample SGD over N = 1e6: at least 200M steps/s (fused trainer)",
           _rate_of("sgd", s.FUSED), lambda r: r >= 200e6),
    Target(4, "1,000 trainings in one sweep: at least 1G steps/s", sweep_rate,
           lambda r: r >= 1e9),
    Target(6, "the full run ends within 10 minutes", full_run_time,
           lambda t: t <= FULL_RUN_LIMIT_S),
)


def check(report: Report) -> list[dict[str, Any]]:
    """Every target against ``report``: ``{"issue", "goal", "measured", "met"}``."""
    results = []
    for target in TARGETS:
        figure = target.figure(report)
        measured = "not measured in this run" if figure is None else figure[1]
        met = None if figure is None else target.met(figure[0])
        results.append({"issue": target.issue, "goal": target.goal, "measured": measured,
                        "met": met})
    return results


# ---------------------------------------------------------------------------------------
# What the numbers mean


def _dispatch(report: Report) -> str | None:
    fused = _largest(report, "lecture", s.FUSED)
    call = next(iter(_rows(report, "chain", s.JAX_JIT)), None)
    torch = next(iter(_rows(report, "lecture", s.PYTORCH_LECTURE)), None)
    if fused is None or call is None:
        return None
    eager = "" if torch is None else (
        f" Eager engines pay a dispatch per operation instead: PyTorch eager spends "
        f"{format_seconds(torch['per_unit_s'])} on each step of the lecture.")
    return (f"**Dispatch.** A compiled call costs about {format_seconds(call['seconds'])} here "
            f"before it computes much (`jax.jit(jax.grad)` of a {call['case']} chain). The fused "
            f"trainer runs the lecture's whole training in one call of "
            f"{format_seconds(fused['seconds'])}, {format_seconds(fused['per_unit_s'])} per "
            f"step: 30 steps are too few to amortise one call, which is why the ratio to "
            f"PyTorch grows with N in section 2.{eager}")


def _ulps(rows: list[Row], reference: float) -> str:
    return " or ".join(str(n) for n in sorted({s.ulp_distance(r["result"], reference)
                                               for r in rows}))


def _fma(report: Report) -> str | None:
    numpy_rows = _rows(report, "lecture", s.NUMPY_LOOP)
    lecture = next((sec["rows"] for sec in report["sections"] if sec["key"] == "lecture"), [])
    done = [r for r in lecture if r["status"] == "ok" and r["result"] is not None]
    compiled = [r for r in done if r["compile_s"] is not None]
    eager = [r for r in done if r["compile_s"] is None]
    if not numpy_rows or not compiled or not eager:
        return None
    reference = numpy_rows[0]["result"]
    return (f"**The last bit.** After the lecture's 30 float32 steps the eager engines end "
            f"{_ulps(eager, reference)} ulp from NumPy's float32 loop, the compiled ones "
            f"{_ulps(compiled, reference)} ulp. XLA contracts `w * x - y` into a fused "
            f"multiply-add, one rounding where eager code rounds twice: the same NumPy loop "
            f"with that FMA lands on the compiled result (the note column counts both "
            f"distances). Both are correct float32 results, within 1e-5 of the float64 "
            f"reference; they round differently.")


def _floor(report: Report) -> str | None:
    fused = _largest(report, "sgd", s.FUSED)
    affine = _largest(report, "sgd", s.AFFINE_FLOOR)
    plain = _largest(report, "sgd", s.PLAIN_SCAN)
    if fused is None or affine is None or plain is None:
        return None
    floor = min(plain["per_unit_s"], affine["per_unit_s"])
    return (f"**The latency floor.** At {fused['case']} the fused trainer takes "
            f"{format_seconds(fused['per_unit_s'])} per step; a bare `lax.scan` of the same "
            f"step takes {format_seconds(plain['per_unit_s'])}, and the step rewritten as one "
            f"fused multiply-add, `w = a_i w + b_i`, {format_seconds(affine['per_unit_s'])}. "
            f"The trainer runs at {floor / fused['per_unit_s']:.0%} of the speed of the "
            f"faster of the two. Per-sample SGD cannot run steps in parallel: each needs the weight the "
            f"previous one wrote, so a step costs the latency of its chain of dependent "
            f"floating-point operations, not their throughput. The trainer adds optax's "
            f"update and writes every step's loss and gradient to its history, which the "
            f"bare scan does not.")


def explain(report: Report) -> list[str]:
    """Paragraphs on dispatch cost, the FMA last-bit difference and the latency floor,
    each with this run's figures; a paragraph whose figures are missing is left out."""
    return [text for text in (_dispatch(report), _fma(report), _floor(report)) if text]
