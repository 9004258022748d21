"""The MLP, forward against reverse mode, and what the backward pass keeps.

The three scripts (experiments/mlp.py, modes.py, remat.py) run with ``--quick`` in
subprocesses; what they print and write is checked against jax.grad, jax.jacfwd and
jax.jacrev. Their building blocks are also checked directly, in this process, against JAX
and closed forms.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbackprop.numpy as jbnp
from jaxbackprop import mlp, tape
from jaxbackprop.tape import ShapeError

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
PNG = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 300  # seconds per script; the quick runs take seconds on a quiet machine


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXPERIMENTS)]),
           "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, str(EXPERIMENTS / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run each script once with --quick (cached for the module): (folder, stdout)."""
    done: dict[str, tuple[Path, str]] = {}

    def get(name: str) -> tuple[Path, str]:
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            result = script(name, "--quick", "--out", str(out))
            assert result.returncode == 0, result.stderr
            done[name] = (out, result.stdout)
        return done[name]

    return get


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import an experiment script as a module (its folder on sys.path for _common)."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import importlib

    return importlib.import_module


# ---------------------------------------------------------------------------------------
# The library module: data, network, loss


def test_two_moons_lie_on_their_half_circles() -> None:
    x, y = mlp.two_moons(101, noise=0.0)
    assert x.shape == (101, 2) and x.dtype == np.float32 and y.tolist().count(0.0) == 51
    centres = np.where(y[:, None] == 0, [-0.5, -0.25], [0.5, 0.25])  # after the shift
    np.testing.assert_allclose(np.linalg.norm(x - centres, axis=1), 1.0, atol=1e-6)
    height = (x - centres)[:, 1]  # class 0 the upper half circle, class 1 the lower
    assert (height[y == 0] >= -1e-6).all() and (height[y == 1] <= 1e-6).all()


def test_spirals_are_point_symmetric() -> None:
    x, y = mlp.spirals(40, noise=0.0)
    np.testing.assert_allclose(x[y == 1], -x[y == 0], atol=1e-6)  # one arm turned by pi


@pytest.mark.parametrize("bad", [dict(samples=1), dict(samples=10, noise=-1.0),
                                 dict(samples=10, noise=float("nan"))])
def test_data_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="samples|noise"):
        mlp.two_moons(**bad)


def test_loss_at_zero_weights_is_log_two() -> None:
    x, y = mlp.two_moons(10)
    params = jax.tree.map(jnp.zeros_like, mlp.init(jax.random.key(0), (2, 5, 1)))
    assert float(mlp.loss(params, x, y)) == pytest.approx(np.log(2.0), rel=1e-6)
    assert float(tape.value_and_grad(mlp.loss)(params, x, y)[0]) == pytest.approx(np.log(2.0))


@pytest.mark.parametrize("data", [mlp.two_moons, mlp.spirals])
def test_tape_gradient_is_jax_gradient(data: Any) -> None:
    x, y = data(50, seed=3)
    params = mlp.init(jax.random.key(1), (2, 16, 16, 1))
    expected = jax.grad(mlp.loss)(params, x, y)
    for found in (tape.grad(mlp.loss)(params, x, y),
                  tape.grad(mlp.loss)(jax.tree.map(np.asarray, params), x, y),  # NumPy
                  jax.jit(tape.grad(mlp.loss))(params, x, y)):
        size = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(expected))
        for g, e in zip(jax.tree.leaves(found), jax.tree.leaves(expected), strict=True):
            assert np.shape(g) == e.shape
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-5 * size)


def test_logistic_loss_gradient_is_p_minus_y() -> None:
    z = np.array([-3.0, 0.5, 40.0, -40.0], np.float32)
    y = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    expected = (1 / (1 + np.exp(-z.astype(np.float64))) - y) / len(z)  # (sigmoid(z) - y) / n
    np.testing.assert_allclose(tape.grad(mlp.logistic_loss)(z, y), expected, rtol=1e-5)
    assert np.isfinite(float(mlp.logistic_loss(z, y)))  # no overflow at |z| = 40


def test_sizes_that_do_not_fit_name_the_shapes() -> None:
    params = mlp.init(jax.random.key(0), (2, 4, 1))
    x3 = np.zeros((5, 3), np.float32)
    y = np.zeros(5, np.float32)
    for engine in (jax.grad, tape.grad):
        with pytest.raises(ShapeError, match=r"\(5, 3\) and \(2, 4\)"):
            engine(mlp.loss)(params, x3, y)
    with pytest.raises(ShapeError, match=r"logits' shape \(5,\), got \(5, 1\)"):
        tape.grad(mlp.loss)(params, np.zeros((5, 2), np.float32), y[:, None])
    with pytest.raises(ValueError, match="sizes"):
        mlp.init(jax.random.key(0), (2,))


# ---------------------------------------------------------------------------------------
# The scripts


def test_scripts_have_help_and_one_line_usage_errors(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    for name, args, code in [(n, ["--help"], 0) for n in ("mlp", "modes", "remat")] + [
            ("mlp", ["--hidden", "16,x"], 2), ("modes", ["--max-n", "0"], 2),
            ("remat", ["--width", "-1"], 2)]:
        monkeypatch.setattr(sys, "argv", [f"experiments/{name}.py", *args])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(EXPERIMENTS / f"{name}.py"), run_name="__main__")
        assert exit_.value.code == code
        printed = capsys.readouterr()
        if code == 0:
            assert f"experiments/{name}.py" in printed.out and "--quick" in printed.out
            assert "--out DIR" in printed.out
        else:
            assert printed.err.count("\n") == 1 and args[0] in printed.err


def test_mlp_engines_agree_at_every_step(quick: Any) -> None:
    out, printed = quick("mlp")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agree"] and summary["max_gap"] <= 1e-5  # a short run: float32 suffices
    assert summary["float64_rechecks"] == {}
    rows = (out / "steps.csv").read_text().splitlines()[1:]
    assert len(rows) == summary["steps"] == 40
    gaps = [float(row.split(",")[-1]) for row in rows]
    assert max(gaps) == pytest.approx(summary["max_gap"]) and max(gaps) <= 1e-5
    losses = [float(row.split(",")[1]) for row in rows]
    assert losses[-1] < losses[0] / 2 and summary["final_accuracy"] > 0.8
    assert "largest difference" in printed and "they agree" in printed
    assert {"eager tape (NumPy arrays)", "jax.jit(tape.grad)", "jax.jit(jax.grad)"} <= set(
        summary["ms_per_gradient"])
    assert "micrograd" in printed  # timed, or skipped with a line saying so
    for figure in ("decision_boundary.png", "training.png"):
        assert (out / figure).read_bytes()[:8] == PNG


def test_mlp_divergence_names_the_step(modules: Any) -> None:
    experiment = modules("mlp")
    x, y = mlp.two_moons(16)
    params = mlp.init(jax.random.key(0), (2, 4, 1))
    with pytest.raises(experiment.DivergenceError, match=r"at step \d+ \(full batch\)") as caught:
        experiment.train(params, x, y, optimizer="sgd", learning_rate=3e38, steps=10,
                         engine="tape")
    losses = caught.value.history.losses[:, 0]  # every step up to the failing one
    step = caught.value.epoch
    assert len(losses) == step + 1 and np.isfinite(losses[:-1]).all()
    assert not np.isfinite(losses[-1])
    assert f"at step {step} " in str(caught.value) and "\n" not in str(caught.value)


def test_mlp_float64_recheck_agrees_and_leaves_float32_on(modules: Any) -> None:
    experiment = modules("mlp")
    x, y = mlp.spirals(30)
    params = mlp.init(jax.random.key(2), (2, 8, 8, 1))
    assert experiment.float64_gap(params, x, y) <= 1e-12
    assert jnp.ones(1).dtype == jnp.float32  # x64 only inside the check


def test_mlp_timing_skips_micrograd_with_a_line_when_missing(modules: Any, monkeypatch: Any,
                                                            capsys: Any) -> None:
    experiment = modules("mlp")
    monkeypatch.setattr(experiment.importlib.util, "find_spec",
                        lambda name: None if name == "micrograd" else object())
    x, y = mlp.two_moons(8)
    params = mlp.init(jax.random.key(0), (2, 3, 1))
    rows = experiment.timings(params, x, y, (2, 3, 1), repeats=1, seed=0)
    assert [row[0] for row in rows] == ["eager tape (NumPy arrays)", "jax.jit(tape.grad)",
                                        "jax.jit(jax.grad)"]
    assert "micrograd: skipped, it is not installed" in capsys.readouterr().out


def test_forward_and_reverse_mode_give_jax_gradient_and_jacobians(modules: Any) -> None:
    modes = modules("modes")
    f, w = modes.lecture_loss(7, seed=1)
    expected = jax.grad(f)(jnp.asarray(w))
    np.testing.assert_allclose(modes.grad_forward(f, w), expected, rtol=1e-5)
    np.testing.assert_allclose(modes.grad_reverse(f, w), expected, rtol=1e-5)
    a = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)

    def g(x: Any) -> Any:
        return jbnp.sin(jbnp.matmul(a, x)) * x[:3]  # indexing on the tape too

    x = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_allclose(modes.jacfwd(g, x), jax.jacfwd(g)(jnp.asarray(x)), atol=1e-6)
    np.testing.assert_allclose(modes.jacrev(g, x), jax.jacrev(g)(jnp.asarray(x)), atol=1e-6)


def test_modes_script(quick: Any) -> None:
    out, printed = quick("modes")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agree"] and summary["largest_gap"] <= 1e-5
    grads = summary["gradient"]
    assert [r["n"] for r in grads] == [1, 10, 100]
    for r in grads:  # forward mode: n passes of the same program; reverse: one
        assert r["tape forward ops"] == r["n"] * grads[0]["tape forward ops"]
        assert r["jax forward ops"] == r["n"] * grads[0]["jax forward ops"]
        assert r["tape reverse ops"] < 2 * grads[0]["tape reverse ops"]
        assert r["gap"] <= 1e-5
    for r in summary["jacobian"]:
        assert r["jacfwd vs jax.jacfwd"] <= 1e-5 and r["jacrev vs jax.jacrev"] <= 1e-5
    assert "one backward pass gives every weight's gradient" in printed
    assert (out / "modes.png").read_bytes()[:8] == PNG


def test_checkpointing_changes_what_jax_saves(modules: Any) -> None:
    remat = modules("remat")
    x, y = mlp.two_moons(30)
    params = mlp.init(jax.random.key(0), (2, 8, 8, 8, 1))
    plain, layers, whole = (remat.jax_residuals(f, params, x, y) for f in remat.VARIANTS.values())
    # Without a checkpoint JAX keeps two (30, 8) arrays per tanh layer (tanh and 1 - tanh^2);
    # checkpointing a layer keeps only its input; checkpointing the network, nothing of it.
    assert plain["count"] - layers["count"] == 3 and layers["count"] - whole["count"] == 3
    assert plain["bytes"] - layers["bytes"] == 3 * 30 * 8 * 4
    assert "output of tanh" in plain["report"] and "output of tanh" not in whole["report"]
    tape_rows = remat.tape_residuals(remat.record(mlp.loss, params, x, y))
    assert sum(r[-1] for r in tape_rows) > plain["bytes"]  # the tape keeps every output


def test_remat_script(quick: Any) -> None:
    out, printed = quick("remat")
    summary = json.loads((out / "summary.json").read_text())
    counts = [summary["mlp_2_16_16_1"][k]["residuals"] for k in
              ("jax.grad", "checkpoint each layer", "checkpoint the network")]
    assert counts == [9, 7, 5]
    assert summary["mlp_2_16_16_1"]["tape_bytes"] > summary["mlp_2_16_16_1"]["jax.grad"]["bytes"]
    kept = summary["bytes_kept"]
    assert kept["tape"][1] > kept["tape"][0]  # grows with depth
    assert kept["checkpoint the network"][0] == kept["checkpoint the network"][1]
    measured = summary["measured"]
    for plain, layer in zip(measured["jax.grad"], measured["checkpoint each layer"], strict=True):
        assert layer["held_bytes"] < plain["held_bytes"]  # what the pullback really holds
        assert layer["backward_flops"] > plain["backward_flops"]  # the recomputation
    assert "print_saved_residuals" in printed
    assert (out / "remat.png").read_bytes()[:8] == PNG
