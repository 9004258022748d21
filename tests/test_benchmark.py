"""The benchmark's method (interleaved rounds, spread, checks) and a quick run of it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jaxbackprop import benchmark, lecture
from jaxbackprop.benchmark import Case, Engine, cases
from jaxbackprop.cli.main import main

TINY = benchmark.Settings(quick=True, rounds=5, min_batch_s=0.0, long_call_s=10.0,
                          long_rounds=1, chains=(10,), jit_chains=(10,), sgd_samples=10,
                          sweeps=(3,))


def _case(engines: tuple[Engine, ...], check: Any = lambda result: "",
          baseline: str = "a") -> Case:
    return Case("test", "fake", 10, "step", engines, check, baseline)


def test_rounds_are_interleaved_and_rotated() -> None:
    calls: list[str] = []

    def engine(name: str) -> Engine:
        return Engine(name, lambda: lambda: calls.append(name))

    benchmark.measure(_case((engine("a"), engine("b"), engine("c"))), TINY)
    timed = calls[6:]  # after each engine's two warm-up calls
    assert [timed[3 * r:3 * r + 3] for r in range(3)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


def test_each_figure_has_its_spread_and_the_ratio_to_the_baseline() -> None:
    rows = benchmark.measure(_case((Engine("a", lambda: lambda: sum(range(3000))),
                                    Engine("b", lambda: lambda: sum(range(300))))), TINY)
    for row in rows:
        assert row["status"] == "ok" and row["rounds"] == TINY.rounds
        assert row["min"] <= row["q1"] <= row["seconds"] <= row["q3"] <= row["max"]
        assert row["per_unit"] == pytest.approx(row["seconds"] / 10)
        assert row["rate"] == pytest.approx(10 / row["seconds"])
    a, b = rows
    assert a["vs_baseline"] == 1.0
    assert b["vs_baseline"] == pytest.approx(a["seconds"] / b["seconds"])


def test_a_wrong_result_is_marked_and_an_exception_is_the_result() -> None:
    def deep() -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    rows = benchmark.measure(_case((
        Engine("a", lambda: lambda: 1.0),
        Engine("b", lambda: lambda: 2.0),
        Engine("c", lambda: deep),
        Engine("d", None, note="pip install d"),
    ), check=lambda result: "" if result == 1.0 else f"{result} is not 1"), TINY)
    assert [r["status"] for r in rows] == ["ok", "WRONG", "RecursionError", "not installed"]
    assert rows[1]["note"] == "2.0 is not 1" and rows[3]["note"] == "pip install d"
    assert "seconds" not in rows[2] and "seconds" not in rows[3]


def test_compile_time_is_reported_apart() -> None:
    first = [True]

    def run() -> None:
        if first[0]:
            first[0] = False
            sum(range(200_000))  # the "compile"

    rows = benchmark.measure(_case((Engine("a", lambda: run, compiled=True),
                                    Engine("b", lambda: lambda: None))), TINY)
    assert rows[0]["compile_s"] > 10 * rows[0]["seconds"] and rows[1]["compile_s"] is None


def test_the_float64_reference_follows_the_notes() -> None:
    w = cases.reference_sgd(lecture.W0, lecture.X_DATA, lecture.Y_DATA, lecture.LEARNING_RATE,
                            lecture.EPOCHS)
    assert f"{4 * w:.4f}" == "7.8049"  # the notes' "predict (after training) 4 7.8049"


@pytest.mark.parametrize("steps", [5, 200])
def test_every_peer_differentiates_the_chain_like_the_closed_form(steps: int) -> None:
    closed_form = cases.CHAIN_A**steps
    settings = dataclasses.replace(TINY, chains=(2 * steps,), jit_chains=(2 * steps,))
    for engine in cases.chains(settings)[0].engines:
        if engine.make is not None:
            assert engine.make()() == pytest.approx(closed_form, rel=1e-12), engine.name


def test_micrograd_fails_on_a_deep_chain_and_that_is_its_result() -> None:
    pytest.importorskip("micrograd")
    settings = dataclasses.replace(TINY, chains=(10**4, 10**5))
    rows = benchmark.measure(cases.chains(settings)[0], settings)
    assert {r["engine"]: r["status"] for r in rows}["micrograd"] == "RecursionError"


def test_the_affine_floor_and_the_bare_scan_compute_the_same_sgd() -> None:
    xs, ys = cases.synthetic_data(100)
    reference = cases.reference_sgd(lecture.W0, xs.tolist(), ys.tolist(), lecture.LEARNING_RATE, 1)
    lr, w0 = np.float32(lecture.LEARNING_RATE), np.float32(lecture.W0)
    assert cases.close_to(reference, 1e-5)(cases.affine_scan(w0, xs, ys, lr)) == ""
    w, (losses, grads) = cases.bare_scan(w0, xs, ys, lr, "steps")
    assert cases.close_to(reference, 1e-5)(w) == "" and losses.shape == grads.shape == (100,)
    assert cases.close_to(reference, 1e-5)(w + 1) != ""


def test_format_seconds_and_rate() -> None:
    assert benchmark.format_seconds(8.4e-6) == "8.4 µs"
    assert benchmark.format_seconds(0.0123) == "12.3 ms"
    assert benchmark.format_seconds(7.43e-9) == "7.43 ns"
    assert benchmark.format_rate(117e6) == "117M" and benchmark.format_rate(5.6e9) == "5.6G"


def test_quick_chain_run_writes_json_and_markdown_with_spreads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    code = main(["bench", "--quick", "--sections", "chain", "--rounds", "2",
                 "--out", str(out), "--markdown", str(md)])
    printed = capsys.readouterr().out
    assert code == 0 and md.read_text() == printed
    report = json.loads(out.read_text())
    assert report["meta"]["command"] == "jaxbackprop bench --quick --sections chain --rounds 2"
    labels = [c["label"] for c in report["cases"]]
    assert labels == ["eager, K = 100 nodes", "eager, K = 1e3 nodes", "eager, K = 1e4 nodes",
                      "compiled, K = 100 nodes (unrolled)"]
    for case in report["cases"]:
        for row in case["rows"]:
            assert row["status"] in ("ok", "not installed", "RecursionError"), row
            if row["status"] == "ok":
                assert math.isfinite(row["seconds"]) and row["min"] <= row["max"]
    assert [r["engine"] for r in report["cases"][2]["rows"]] == ["tape (Python floats)"]
    assert "| engine | median per node | IQR | min – max |" in printed
    assert "issue" not in printed.lower()


def test_every_section_builds_its_cases() -> None:
    built = {name: make(TINY) for name, make in cases.SECTIONS.items()}
    assert [len(c) for c in built.values()] == [2, 1, 2, 1]
    for section in built.values():
        for case in section:
            assert case.baseline in [e.name for e in case.engines]
