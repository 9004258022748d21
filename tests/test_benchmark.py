"""The benchmark: a quick run completes and writes well-formed JSON whose every result is
right; the harness's bookkeeping; the peers' numbers. No timing is asserted anywhere."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jaxbackprop import benchmark
from jaxbackprop.benchmark import harness, peers, report, sections, summary
from jaxbackprop.cli.main import main
from jaxbackprop.lecture import EPOCHS, LEARNING_RATE, W0, X_DATA, Y_DATA

ROW_KEYS = {"case", "size", "engine", "family", "status", "seconds", "per_unit_s", "rate",
            "compile_s", "agrees", "note", "vs_pytorch", "vs_best", "rounds", "calls_per_round",
            "result"}
STATUSES = {"ok", "extrapolated", "skipped", "not installed", "RecursionError"}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    """``jaxbackprop bench --quick`` once for the module: exit code, JSON report, Markdown."""
    folder = tmp_path_factory.mktemp("bench")
    out, markdown = folder / "nested" / "bench.json", folder / "bench.md"
    code = main(["bench", "--quick", "--out", str(out), "--markdown", str(markdown)])
    return code, json.loads(out.read_text()), markdown.read_text()


def all_rows(report_: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for section in report_["sections"] for row in section["rows"]]


# ---------------------------------------------------------------------------------------
# The quick run, end to end


def test_quick_run_writes_every_section_as_json_and_markdown(
        quick_run: tuple[int, dict[str, Any], str], capsys: pytest.CaptureFixture[str]) -> None:
    code, data, markdown = quick_run
    assert code == 0
    assert [s["key"] for s in data["sections"]] == list(benchmark.SECTIONS)
    assert data["meta"]["command"] == "jaxbackprop bench --quick"
    assert data["meta"]["settings"]["quick"] is True
    for number, section in enumerate(data["sections"], start=1):
        assert f"## {number}. {section['title']}" in markdown
        assert section["rows"], section["key"]
        for row in section["rows"]:
            assert f"| {row['case']} | {row['engine']} |" in markdown


def test_quick_run_checks_the_targets_and_explains_the_numbers(
        quick_run: tuple[int, dict[str, Any], str]) -> None:
    _, data, markdown = quick_run
    assert [t["issue"] for t in data["targets"]] == [t.issue for t in summary.TARGETS]
    lecture = next(t for t in data["targets"] if "30 steps" in t["goal"])
    fused = next(r for r in data["sections"][0]["rows"] if r["engine"] == sections.FUSED)
    expected = None if fused["vs_pytorch"] is None else fused["vs_pytorch"] >= 150
    assert lecture["met"] == expected and (expected is None) == (not installed("torch"))
    assert data["targets"][-1]["met"] is None  # a quick run is not the full run
    assert "## Targets" in markdown and "## What the numbers mean" in markdown
    assert [p.split("**")[1] for p in data["reading"]] == [
        "Dispatch.", "The last bit.", "The latency floor."]


def test_quick_run_rows_are_consistent(quick_run: tuple[int, dict[str, Any], str]) -> None:
    for row in all_rows(quick_run[1]):
        assert set(row) == ROW_KEYS and row["status"] in STATUSES, row
        if row["status"] in ("ok", "extrapolated"):
            assert row["seconds"] > 0 and math.isclose(row["per_unit_s"] * row["rate"], 1.0)
            assert (row["rounds"] >= 1) == (row["status"] == "ok")
        else:
            assert row["seconds"] is None and row["vs_best"] is None


def test_quick_run_every_measured_result_matches_its_reference(
        quick_run: tuple[int, dict[str, Any], str]) -> None:
    measured = [row for row in all_rows(quick_run[1]) if row["status"] == "ok"]
    assert len(measured) >= 20
    wrong = [(r["case"], r["engine"], r["note"]) for r in measured if r["agrees"] is not True]
    assert wrong == []


def test_quick_run_ratios_divide_the_right_times(
        quick_run: tuple[int, dict[str, Any], str]) -> None:
    for section in quick_run[1]["sections"]:
        for case in {row["case"] for row in section["rows"]}:
            rows = [r for r in section["rows"] if r["case"] == case and r["seconds"]]
            torch = [r for r in rows if r["engine"].startswith("PyTorch")]
            best = min(r["seconds"] for r in rows if r["family"] != "jaxbackprop")
            for row in rows:
                assert math.isclose(row["vs_best"], best / row["seconds"])
                if torch:
                    assert math.isclose(row["vs_pytorch"], torch[0]["seconds"] / row["seconds"])


def test_quick_run_reports_each_peer_as_installed_or_not(
        quick_run: tuple[int, dict[str, Any], str]) -> None:
    for row in all_rows(quick_run[1]):
        for name, module in (("PyTorch", "torch"), ("micrograd", "micrograd"),
                             ("autograd", "autograd")):
            if name in row["engine"]:
                assert (row["status"] == "not installed") == (not installed(module)), row


@pytest.mark.skipif(not installed("micrograd"), reason="micrograd not installed")
def test_quick_run_records_micrograds_recursion_error(
        quick_run: tuple[int, dict[str, Any], str]) -> None:
    chains = next(s for s in quick_run[1]["sections"] if s["key"] == "chain")
    micrograd = {r["size"]: r for r in chains["rows"] if r["engine"] == "micrograd"}
    assert micrograd[100]["status"] == "ok"
    deepest = micrograd[max(micrograd)]
    assert deepest["status"] == "RecursionError" and "recursion limit" in deepest["note"]


# ---------------------------------------------------------------------------------------
# The harness's bookkeeping (no timing involved)


def test_measure_records_an_exception_as_the_result() -> None:
    def deep() -> None:
        raise RecursionError("too deep")
    timings = harness.measure({"deep": deep, "fine": lambda: 3}, harness.QUICK)
    assert timings["deep"].status == "RecursionError" and timings["deep"].seconds is None
    assert timings["fine"].status == "ok" and timings["fine"].result == 3


def _case(size: int) -> harness.Case:
    return harness.Case(size, f"n={size}", size, lambda result: (True, ""))


def test_a_case_too_slow_to_repeat_is_extrapolated_and_marked() -> None:
    engine = harness.Engine("slow", "peer", make=lambda n: lambda: None)
    direct = harness._Direct(_case(10), per_unit_s=1.0)
    row = harness._planned_row(_case(100), engine, direct, harness.QUICK)
    assert row is not None and row["status"] == "extrapolated"
    assert row["seconds"] == 100.0 and row["note"] == "extrapolated from n=10"
    assert harness._planned_row(_case(100), engine, None, harness.QUICK) is None


def test_an_unrolled_compile_predicted_too_long_is_skipped() -> None:
    engine = harness.Engine("unrolled", "JAX", make=lambda n: lambda: None, compiled=True,
                            unrolled=True)
    direct = harness._Direct(_case(10), per_unit_s=1e-9, compile_s=1.0)
    row = harness._planned_row(_case(1000), engine, direct, harness.QUICK)
    assert row is not None and row["status"] == "skipped" and row["seconds"] is None
    assert "about 100 s" in row["note"]


def test_a_missing_peer_is_not_installed_and_never_estimated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peers, "optional_import", lambda name: None)
    settings = dataclasses.replace(harness.QUICK, rounds=1, chain_lengths=(10,))
    rows = sections.tape_chains(settings)["rows"]
    missing = [r for r in rows if r["family"] == "peer"]
    assert {r["engine"] for r in missing} == {"PyTorch eager", "micrograd", "HIPS autograd"}
    for row in missing:
        assert row["status"] == "not installed" and row["seconds"] is None
        assert row["note"].startswith("pip install")
    assert all(r["vs_pytorch"] is None for r in rows)
    assert all(r["status"] == "ok" and r["agrees"] for r in rows if r["family"] != "peer")


def test_ratios_are_speedups_over_pytorch_and_over_the_best_peer() -> None:
    rows = [{"engine": e, "family": f, "seconds": t} for e, f, t in
            [("torch", "peer", 8.0), ("jax", "JAX", 2.0), ("ours", "jaxbackprop", 1.0),
             ("missing", "peer", None)]]
    harness.add_ratios(rows, pytorch="torch")
    assert [r.get("vs_pytorch") for r in rows] == [1.0, 4.0, 8.0, None]
    assert [r.get("vs_best") for r in rows] == [0.25, 1.0, 2.0, None]


@pytest.mark.parametrize(("seconds", "text"), [(8.4e-6, "8.4 µs"), (0.0123, "12.3 ms"),
                                                (2.0, "2 s"), (3.7e-9, "3.7 ns")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert report.format_seconds(seconds) == text


def test_format_rate_and_ratio() -> None:
    assert report.format_rate(117e6) == "117M" and report.format_rate(1.2e9) == "1.2G"
    assert report.format_ratio(126.4) == "126x" and report.format_ratio(0.01234) == "0.012x"


def test_ulp_distance_counts_float32_steps() -> None:
    one = np.float32(1.0)
    assert sections.ulp_distance(one, one) == 0
    assert sections.ulp_distance(one, np.nextafter(one, np.float32(2))) == 1


# ---------------------------------------------------------------------------------------
# The peers compute the lecture's numbers


def lecture_first_epoch_weight() -> float:
    """w after one epoch, from the gradients the notes print: -2, -7.84, -16.2288."""
    return W0 - LEARNING_RATE * (-2.0 - 7.84 - 16.2288)


def test_numpy_and_reference_training_follow_the_notes() -> None:
    xs, ys = np.asarray(X_DATA, np.float32), np.asarray(Y_DATA, np.float32)
    expected = lecture_first_epoch_weight()
    assert peers.reference_training(W0, X_DATA, Y_DATA, LEARNING_RATE, 1) == pytest.approx(
        expected, rel=1e-12)
    assert peers.numpy_training(W0, xs, ys, LEARNING_RATE, 1) == pytest.approx(expected, rel=1e-6)


def test_the_fma_reference_differs_from_eager_float32_in_the_last_bit_only() -> None:
    xs, ys = np.asarray(X_DATA, np.float32), np.asarray(Y_DATA, np.float32)
    fma = peers.numpy_training_fma(W0, xs, ys, LEARNING_RATE, EPOCHS)
    eager = peers.numpy_training(W0, xs, ys, LEARNING_RATE, EPOCHS)
    assert fma.dtype == np.float32 and sections.ulp_distance(fma, eager) <= 2
    assert fma == pytest.approx(peers.reference_training(W0, X_DATA, Y_DATA, LEARNING_RATE,
                                                         EPOCHS), rel=1e-6)


def _report_with(rows: dict[str, list[dict[str, Any]]], quick: bool = False) -> dict[str, Any]:
    return {"meta": {"settings": dataclasses.asdict(harness.QUICK if quick else harness.FULL),
                     "wall_s": 300.0},
            "sections": [{"key": key, "rows": section_rows} for key, section_rows in rows.items()]}


def _ok(engine: str, case: str, seconds: float, units: float, **extra: Any) -> dict[str, Any]:
    return {"engine": engine, "case": case, "status": "ok", "seconds": seconds,
            "per_unit_s": seconds / units, "rate": units / seconds, **extra}


def test_targets_are_read_from_the_rows() -> None:
    report_ = _report_with({
        "lecture": [_ok(sections.FUSED, "30 steps", 1e-5, 30, vs_pytorch=200.0, size=30)],
        "sgd": [_ok(sections.FUSED, "N=1e6", 1e-2, 1e6, size=10**6)],
        "chain": [_ok(sections.TAPE_EAGER, "K=1e2", 5e-5, 100, size=100),
                  _ok(sections.MICROGRAD, "K=1e2", 5e-4, 100, size=100),
                  {"engine": sections.MICROGRAD, "case": "K=1e4", "status": "RecursionError"},
                  _ok(sections.TAPE_JIT, "K=1e2", 1.3e-5, 100, size=100),
                  _ok(sections.JAX_JIT, "K=1e2", 1e-5, 100, size=100)],
    })
    met = {t["goal"].split(":")[0]: (t["measured"], t["met"]) for t in summary.check(report_)}
    assert met["tape eager on Python floats"] == ("500 ns/node at K=1e2", True)
    assert met["tape eager"] == ("10x at K=1e2 (micrograd: RecursionError on longer chains)", True)
    assert met["jax.jit(tape.grad(f)) within 1.2x of jax.jit(jax.grad(f))"][1] is False
    assert met["the lecture's 30 steps"] == ("200x per step", True)
    # Without a failing micrograd row the measurement claims no failure.
    chain_ok = [r for r in report_["sections"][2]["rows"] if r.get("status") == "ok"]
    report_["sections"][2]["rows"] = chain_ok
    met = {t["goal"].split(":")[0]: (t["measured"], t["met"]) for t in summary.check(report_)}
    assert met["tape eager"] == ("10x at K=1e2", True)
    assert met["per-sample SGD over N = 1e6"] == ("100M steps/s at N=1e6", False)
    assert met["1,000 trainings in one sweep"] == ("not measured in this run", None)
    assert met["the full run ends within 10 minutes"] == ("not measured in this run", None)
    every_section = _report_with({key: [] for key in sections.SECTIONS})
    assert summary.full_run_time(every_section) == (300.0, "300 s")
    assert summary.full_run_time(_report_with({key: [] for key in sections.SECTIONS},
                                              quick=True)) is None


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_the_lecture_pytorch_loop_follows_the_notes_and_matches_numpy_bitwise() -> None:
    torch = peers.optional_import("torch")
    xs, ys = np.asarray(X_DATA, np.float32), np.asarray(Y_DATA, np.float32)
    w = peers.pytorch_lecture_training(torch, X_DATA, Y_DATA, W0, LEARNING_RATE, 1)
    assert w == pytest.approx(lecture_first_epoch_weight(), rel=1e-6)
    w10 = peers.pytorch_lecture_training(torch, X_DATA, Y_DATA, W0, LEARNING_RATE, EPOCHS)
    assert sections.ulp_distance(w10, peers.numpy_training(W0, xs, ys, LEARNING_RATE, EPOCHS)) == 0
    lrs, w0s = np.float32([LEARNING_RATE, 0.02]), np.float32([W0, -1.0])
    np.testing.assert_array_equal(peers.pytorch_sweep(torch, lrs, w0s, X_DATA, Y_DATA, EPOCHS),
                                  peers.numpy_sweep(lrs, w0s, xs, ys, EPOCHS))


@pytest.mark.parametrize("module", ["micrograd.engine", "autograd", "torch"])
def test_peer_chain_gradients_match_the_closed_form(module: str) -> None:
    found = peers.optional_import(module)
    if found is None:
        pytest.skip(f"{module} not installed")
    grad = {"micrograd.engine": peers.micrograd_chain_grad, "autograd": peers.autograd_chain_grad,
            "torch": peers.pytorch_chain_grad}[module]
    a, b, steps = 1.5, 0.25, 10  # d/dx of 10 steps of x*a + b is a**10 = 3**10 / 2**10, exact
    assert float(grad(found, steps, a, b)) == a**steps


@pytest.mark.skipif(not installed("micrograd"), reason="micrograd not installed")
def test_micrograd_raises_recursion_error_on_a_deep_chain() -> None:
    engine = peers.optional_import("micrograd.engine")
    with pytest.raises(RecursionError):
        peers.micrograd_chain_grad(engine, 2000, 1.0001, 0.0001)


# ---------------------------------------------------------------------------------------
# The command's errors: one line, before any measuring


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "message"), [
    (["--rounds", "0"], "--rounds: expected a whole number >= 1, got 0"),
    (["--sections", "nope"], "argument --sections: invalid choice: 'nope'"),
])
def test_bad_options_fail_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                      message: str) -> None:
    code, out, err = run_cli(capsys, "bench", *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err


def test_an_output_that_is_a_folder_fails_before_measuring(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "bench", "--quick", "--out", str(tmp_path))
    assert code == 2 and out == ""
    assert err == f"jaxbackprop bench: error: --out {tmp_path}: is a folder; expected a file name\n"


def test_an_output_under_a_file_fails_before_measuring(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, out, err = run_cli(capsys, "bench", "--quick", "--markdown", str(blocker / "b.md"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"jaxbackprop bench: error: --markdown {blocker / 'b.md'}: "
                          "cannot create its folder")


def test_an_unknown_section_is_named() -> None:
    with pytest.raises(ValueError, match="sections: unknown nope; expected some of lecture, sgd"):
        benchmark.run(harness.QUICK, ["nope"])
