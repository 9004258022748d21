"""Many devices: the sharded sweep and data-parallel SGD agree with single runs and with NumPy.

The multi-device runs happen in subprocesses (tests/parallel_worker.py) with forced CPU
devices, so that this process keeps its one device; each has a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from parallel_worker import RATES, SGD, SWEEP_SGD, XS, YS

import jaxbackprop as jb
from jaxbackprop import lecture, parallel

WORKER = Path(__file__).with_name("parallel_worker.py")

TIMEOUT_S = 120


def numpy_minibatch_sgd(w: float, xs: np.ndarray, ys: np.ndarray, batch_size: int, lr: float,
                        epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference in float64: per batch, ``L = mean (w x - y)^2`` then
    ``w -= lr * mean 2 (w x - y) x``. Returns (losses per batch, w after each epoch)."""
    xb, yb = (np.asarray(a, np.float64).reshape(-1, batch_size) for a in (xs, ys))
    losses, params = [], []
    for _ in range(epochs):
        row = []
        for x, y in zip(xb, yb, strict=False):
            s = w * x - y
            row.append(np.mean(s**2))
            w = w - lr * np.mean(2 * s * x)
        losses.append(row)
        params.append(w)
    return np.array(losses), np.array(params)


def run_worker(*args: str, devices: int) -> subprocess.Popen[str]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, str(WORKER), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check_report(report: dict[str, Any], devices: int) -> None:
    assert report["devices"] == devices
    assert report["sweep_max_ulp"] <= 4 and report["sweep_w_equal"]
    assert report["sweep_shape"] == [len(RATES), lecture.EPOCHS, len(lecture.X_DATA)]
    assert report["data_parallel_all_reduce"], "XLA did not all-reduce the gradient"
    for batch_size in (16, 64):
        run = report[f"batch_{batch_size}"]
        losses, params = numpy_minibatch_sgd(0.0, XS, YS, batch_size, 0.1, 3)
        np.testing.assert_allclose(run["losses"], losses, rtol=1e-5)
        np.testing.assert_allclose(run["params"], params, rtol=1e-5)
        assert run["max_rel_diff_to_one_device"] < 1e-5  # the reduction order may differ
    assert report["batch_error"] == (f"batch_size must be a multiple of the {devices} devices "
                                     f"of the mesh's 'data' axis, got {devices // 2}")


def test_eight_devices_in_one_process() -> None:
    worker = run_worker(devices=8)
    out, err = worker.communicate(timeout=TIMEOUT_S)
    assert worker.returncode == 0, err
    check_report(json.loads(out.splitlines()[-1]), devices=8)


def test_two_processes_on_localhost() -> None:
    """Multi-host through jax.distributed.initialize: 2 processes x 2 CPU devices, gloo."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    workers = [run_worker(port, str(pid), "2", devices=2) for pid in (0, 1)]
    try:
        outputs = [w.communicate(timeout=TIMEOUT_S) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, outputs, strict=False):
        assert w.returncode == 0, err
    reports = [[line for line in out.splitlines() if line.startswith("{")] for out, _ in outputs]
    assert len(reports[0]) == 1 and reports[1] == []  # only process 0 reports (gloo chats too)
    report = json.loads(reports[0][0])
    assert report["processes"] == 2
    check_report(report, devices=4)


# ---------------------------------------------------------------------------------------
# The same functions on this process's one device


def test_sharded_sweep_on_one_device_is_the_sweep() -> None:
    w, history = parallel.sharded_sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                        optimizer=SWEEP_SGD, learning_rate=RATES.reshape(1, -1))
    w_ref, ref = jb.sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                          optimizer=SWEEP_SGD, learning_rate=RATES.reshape(1, -1))
    assert isinstance(w, jax.Array) and w.shape == (1, len(RATES))
    for a, b in zip(history, ref, strict=False):
        np.testing.assert_array_max_ulp(np.asarray(a), b, maxulp=4)


def test_batch_of_one_is_the_per_sample_training() -> None:
    sgd = optax.sgd(lecture.LEARNING_RATE)
    w, history = parallel.data_parallel_train(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                              batch_size=1, optimizer=sgd)
    w_ref, ref = jb.train_scan(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=sgd)
    for a, b in zip(history, ref, strict=False):
        np.testing.assert_array_max_ulp(np.asarray(a), b, maxulp=4)


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_full_batch_gradient_descent_matches_numpy(engine: str) -> None:
    w, history = parallel.data_parallel_train(jb.loss, 0.0, XS, YS, batch_size=len(XS),
                                              optimizer=SGD, epochs=5, engine=engine)
    losses, params = numpy_minibatch_sgd(0.0, XS, YS, len(XS), 0.1, 5)
    np.testing.assert_allclose(np.asarray(history.losses), losses, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(history.params), params, rtol=1e-5)
    assert float(w) == float(history.params[-1])


def test_data_parallel_refuses_a_loss_that_does_not_broadcast_over_a_batch() -> None:
    """A summed loss trains batch_mean on the wrong objective (w -> [1.04, 1.15, 1.33] where
    the minibatch mean gives 1.178 three times); a dot with the batch fails or mixes samples."""
    def summed(w: Any, x: Any, y: Any) -> Any:
        return jnp.sum((w * x - y) ** 2)

    def linear(w: Any, x: Any, y: Any) -> Any:
        return (jnp.dot(w, x) - y) ** 2

    xs = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], np.float32)
    with pytest.raises(ValueError, match=r"loss must broadcast over a batch .* \(shape \(3,\)\), "
                                         r"got shape \(\)$"):
        parallel.data_parallel_train(summed, np.ones(3, np.float32), xs, 2 * xs, batch_size=3,
                                     optimizer=SGD)
    features = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    with pytest.raises(ValueError, match="must broadcast over a batch .* on a batch it failed"):
        parallel.data_parallel_train(linear, np.ones(2, np.float32), features, xs, batch_size=3,
                                     optimizer=SGD)
    square = np.arange(8, dtype=np.float32).reshape(4, 2) / 10  # batch 2 = d 2: dot mixes them
    with pytest.raises(ValueError, match="loss must broadcast over a batch .* got other values"):
        parallel.data_parallel_train(linear, np.ones(2, np.float32), square, xs[:4], batch_size=2,
                                     optimizer=SGD)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=5), "batch_size must divide the number of samples 64, got 5"),
    (dict(batch_size=0), "batch_size must be a whole number >= 1, got 0"),
    (dict(batch_size=8, mesh=parallel.make_mesh("runs")), "mesh must have an axis named 'data'"),
    (dict(batch_size=8, optimizer=SWEEP_SGD, learning_rate=-1.0),
     "learning_rate must be a finite number > 0"),
    (dict(batch_size=np.int64(5)), "batch_size must divide the number of samples 64, got 5"),
    (dict(batch_size=8, xs=["1"] * 64), "xs must hold numbers"),
])
def test_data_parallel_bad_input(kwargs: dict[str, Any], message: str) -> None:
    args = dict(optimizer=SGD, xs=XS) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        parallel.data_parallel_train(jb.loss, 0.0, args.pop("xs"), YS, **args)


def test_numpy_integers_are_batch_sizes() -> None:
    w, history = parallel.data_parallel_train(jb.loss, 0.0, XS, YS, batch_size=np.int64(16),
                                              optimizer=SGD, epochs=np.int32(2))
    assert np.shape(history.losses) == (2, 4)


@pytest.mark.parametrize("data, name", [
    ((1.0, float("nan"), 3.0), r"xs\[1\] must be finite, got nan"),
    ((1.0, 2.0, 1e39), r"xs\[2\] must be finite in the training dtype float32, got 1e\+39"),
])
def test_sharded_sweep_names_bad_data(data: tuple[float, ...], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        parallel.sharded_sweep(jb.loss, 1.0, data, lecture.Y_DATA, optimizer=SWEEP_SGD,
                               learning_rate=RATES)


def test_sharded_sweep_takes_any_parameters_and_records_less() -> None:
    def line(p: dict[str, Any], x: Any, y: Any) -> Any:
        return (p["w"] * x + p["b"] - y) ** 2

    w0 = {"w": np.array([1.0, 0.5], np.float32), "b": 0.0}
    w, history = parallel.sharded_sweep(line, w0, lecture.X_DATA, lecture.Y_DATA,
                                        optimizer=optax.adam(0.1), record="final")
    w_ref, ref = jb.sweep(line, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=optax.adam(0.1),
                          record="final")
    for key in w0:
        np.testing.assert_array_max_ulp(np.asarray(w[key]), w_ref[key], maxulp=4)
    assert history.losses is None and ref.params["b"].shape == (2, 1)


def test_data_parallel_divergence_is_reported_per_batch() -> None:
    with pytest.raises(jb.DivergenceError) as caught:
        parallel.data_parallel_train(jb.loss, 1.0, XS, YS, batch_size=16,
                                     optimizer=optax.sgd(100.0), epochs=50)
    error = caught.value
    assert error.history.losses.shape == (error.epoch + 1, 4) and "\n" not in str(error)
    assert np.isfinite(error.history.losses.ravel()[: error.epoch * 4 + error.sample]).all()


def test_data_parallel_names_the_bad_sample_not_its_batch() -> None:
    import math

    from jaxbackprop import loss
    from jaxbackprop.parallel import data_parallel_train

    with pytest.raises(ValueError, match=r"xs\[2\] must be finite, got nan"):
        data_parallel_train(loss, 1.0, (1.0, 2.0, math.nan, 4.0), (2.0, 4.0, 6.0, 8.0),
                            batch_size=2, optimizer=SGD)


def test_the_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(parallel, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
