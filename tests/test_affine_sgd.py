"""The parallel scan over SGD's affine steps: the notes' trace, agreement with an
independent sequential loop (NumPy, float64), the records, and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from lecture_trace import EPOCH_LOSS, GRADS, at_printed_precision

import jaxbackprop as jb
from jaxbackprop import affine_sgd, lecture
from jaxbackprop.affine_sgd import compose, composition, final_weight, train_parallel, weights

LECTURE = (lecture.W0, lecture.X_DATA, lecture.Y_DATA)


def linear(w: Any, x: Any, y: Any) -> Any:
    """Linear regression with d features: ``(w . x - y)^2``."""
    return (jnp.dot(w, x) - y) ** 2


def numpy_sgd(w0: Any, xs: Any, ys: Any, rates: Any, epochs: int) -> dict[str, np.ndarray]:
    """The lecture's loop in float64 NumPy, ``w -= lr_k 2 (w . x - y) x``; ``rates`` is one
    rate or one per step. Returns the weights before each step and after each epoch, and
    each step's loss and gradient."""
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    n, w = len(xs), np.array(w0, np.float64)
    rates = np.broadcast_to(np.asarray(rates, np.float64), (epochs * n,))
    out: dict[str, list[Any]] = {"before": [], "losses": [], "grads": [], "params": []}
    for epoch in range(epochs):
        for i in range(n):
            residual = np.dot(w, xs[i]) - ys[i]
            grad = 2 * residual * xs[i]
            out["before"].append(w)
            out["losses"].append(residual**2)
            out["grads"].append(grad)
            w = w - rates[epoch * n + i] * grad
        out["params"].append(w)
    shaped = {k: np.array(v) for k, v in out.items()}
    for k in ("before", "losses", "grads"):
        shaped[k] = shaped[k].reshape(epochs, n, *shaped[k].shape[1:])
    return shaped


def data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 samples of a noisy linear target; ``xs`` is ``(n,)`` for ``d = 1``."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-1, 1, (n, d))
    ys = xs @ np.linspace(2, -1, d) + rng.normal(0, 0.1, n)
    return (xs[:, 0] if d == 1 else xs).astype(np.float32), ys.astype(np.float32)


def test_the_notes_trace(float_mode: str) -> None:
    w, history = train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(lecture.LEARNING_RATE),
                                epochs=lecture.EPOCHS)
    assert history.losses.dtype == np.dtype(float_mode)
    assert history.losses.shape == history.grads.shape == (lecture.EPOCHS, 3)
    assert at_printed_precision(history.grads[: len(GRADS)]) == at_printed_precision(GRADS)
    printed = at_printed_precision(history.epoch_loss[: len(EPOCH_LOSS)])
    assert printed == at_printed_precision(EPOCH_LOSS)
    assert f"{float(jb.predict(w, lecture.X_PREDICT)):.4f}" == "7.8049"
    np.testing.assert_array_equal(w, history.params[-1])


@pytest.mark.parametrize("n", [1, 33, 1000])
@pytest.mark.parametrize("d", [1, 3, 8])  # 3 and 8: both ways of affine_sgd._matmul
def test_agrees_with_a_sequential_loop(n: int, d: int) -> None:
    xs, ys = data(n, d, seed=n)
    w0 = np.float32(0.5) if d == 1 else np.full(d, 0.5, np.float32)
    loss = jb.loss if d == 1 else linear
    w, history = train_parallel(loss, w0, xs, ys, optimizer=optax.sgd(0.1), epochs=2)
    ref = numpy_sgd(w0, xs, ys, 0.1, 2)
    np.testing.assert_allclose(history.losses, ref["losses"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(history.grads, ref["grads"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.params, ref["params"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, ref["params"][-1], rtol=1e-5, atol=1e-6)
    assert history.grads.shape == (2, n, *np.shape(w0))
    np.testing.assert_array_equal(history.epoch_loss, history.losses[:, -1])


def test_a_million_float32_steps_stay_close_to_float64(float_mode: str) -> None:
    """The issue's bounds at N = 1e6 in float32: the final weight within 1e-5 (relative) of
    a float64 loop, the per-step losses within 1e-4 of the sequential trainer's."""
    if float_mode != "float32":
        pytest.skip("float32 only")
    from jaxbackprop.benchmark.cases import reference_sgd, synthetic_data

    xs, ys = synthetic_data(10**6)
    reference = reference_sgd(lecture.W0, xs.tolist(), ys.tolist(), lecture.LEARNING_RATE, 1)
    sgd = optax.sgd(lecture.LEARNING_RATE)
    w, history = train_parallel(jb.loss, lecture.W0, xs, ys, optimizer=sgd, epochs=1)
    _, sequential = jb.train_scan(jb.loss, lecture.W0, xs, ys, optimizer=sgd, epochs=1)
    assert abs(float(w) - reference) <= 1e-5 * abs(reference)
    assert np.abs(np.asarray(history.losses) - np.asarray(sequential.losses)).max() <= 1e-4


def test_float64_agrees_to_rounding(float_mode: str) -> None:
    if float_mode != "float64":
        pytest.skip("float64 only")
    xs, ys = data(5000, 1)
    w, history = train_parallel(jb.loss, 1.0, xs.astype(np.float64), ys.astype(np.float64),
                                optimizer=optax.sgd(0.2), epochs=1)
    ref = numpy_sgd(1.0, xs, ys, 0.2, 1)
    np.testing.assert_allclose(w, ref["params"][-1], rtol=1e-13)
    np.testing.assert_allclose(history.losses, ref["losses"], rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("d", [1, 3])
def test_the_records_agree(d: int) -> None:
    xs, ys = data(77, d)
    w0 = np.zeros(()) if d == 1 else np.zeros(d)
    loss = jb.loss if d == 1 else linear
    run = {record: train_parallel(loss, w0.astype(np.float32), xs, ys, optimizer=optax.sgd(0.05),
                                  epochs=3, record=record)
           for record in ("steps", "epochs", "final")}
    steps, epochs, final = (run[r][1] for r in ("steps", "epochs", "final"))
    assert epochs.losses is epochs.grads is final.losses is final.grads is final.epoch_loss is None
    assert epochs.params.shape == (3, *w0.shape) and final.params.shape == (1, *w0.shape)
    np.testing.assert_allclose(epochs.epoch_loss, steps.epoch_loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(epochs.params, steps.params, rtol=1e-5, atol=1e-7)
    for record in run:
        np.testing.assert_allclose(run[record][0], steps.params[-1], rtol=1e-5, atol=1e-7)


def test_a_schedule_is_followed_step_by_step() -> None:
    xs, ys = data(40, 1)
    schedule = optax.exponential_decay(0.3, transition_steps=7, decay_rate=0.5)
    w, history = train_parallel(jb.loss, 0.0, xs, ys, optimizer=optax.sgd(schedule), epochs=2)
    ref = numpy_sgd(0.0, xs, ys, [float(schedule(k)) for k in range(80)], 2)
    np.testing.assert_allclose(history.losses, ref["losses"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w, ref["params"][-1], rtol=1e-5)


def test_parameters_may_be_a_pytree() -> None:
    xs, ys = data(50, 2)

    def affine(p: dict[str, Any], x: Any, y: Any) -> Any:
        return (jnp.dot(p["w"], x) + p["b"] - y) ** 2

    w0 = {"w": jnp.zeros(2), "b": jnp.zeros(())}
    w, history = train_parallel(affine, w0, xs, ys, optimizer=optax.sgd(0.1), epochs=2)
    assert history.grads["w"].shape == (2, 50, 2) and history.grads["b"].shape == (2, 50)
    ones = np.concatenate([xs, np.ones((50, 1), np.float32)], axis=1)
    ref = numpy_sgd(np.zeros(3), ones, ys, 0.1, 2)
    np.testing.assert_allclose(np.append(w["w"], w["b"]), ref["params"][-1], rtol=1e-5, atol=1e-6)


def test_the_scan_pieces_against_a_loop() -> None:
    rng = np.random.default_rng(3)
    for n, d in ((1, 1), (70, 1), (600, 1), (45, 2)):
        a = rng.uniform(0.5, 1.0, (n,) if d == 1 else (n, d, d)).astype(np.float32)
        b = rng.normal(size=(n,) if d == 1 else (n, d)).astype(np.float32)
        w = np.float32(0.3) if d == 1 else np.full(d, 0.3, np.float32)
        before = []
        for t in range(n):
            before.append(w)
            w = a[t] * w + b[t] if d == 1 else a[t] @ w + b[t]
        maps = jnp.asarray(a), jnp.asarray(b)
        got = jax.jit(weights, static_argnums=2)(jnp.asarray(before[0]), maps, 8)
        np.testing.assert_allclose(got, np.array(before), rtol=2e-5, atol=1e-6)
        last = jax.jit(final_weight, static_argnums=2)(jnp.asarray(before[0]), maps, 8)
        np.testing.assert_allclose(last, w, rtol=2e-5, atol=1e-6)
    identity = composition((jnp.zeros((0,)), jnp.zeros((0,))))
    assert [float(v) for v in identity] == [1.0, 0.0]
    # (2, 3) after (5, 7): w -> 2 (5 w + 7) + 3 = 10 w + 17
    assert [float(v) for v in compose((jnp.array(5.0), jnp.array(7.0)),
                                      (jnp.array(2.0), jnp.array(3.0)))] == [10.0, 17.0]


def test_the_scan_pieces_take_any_arrays_and_refuse_what_does_not_fit() -> None:
    # w -> w / 2 + 1 five times from 1: 1.5, 1.75, 1.875, 1.9375, 1.96875 (exact in binary)
    halves = ([0.5] * 5, [1.0] * 5)  # lists, as jnp functions take them
    assert float(final_weight(1.0, halves)) == 1.96875
    assert [float(w) for w in weights(1.0, halves)] == [1.0, 1.5, 1.75, 1.875, 1.9375]
    assert float(jax.grad(lambda w: final_weight(w, halves))(1.0)) == 0.5**5
    # no maps: the weight is w0, and no weight comes before a map
    assert float(final_weight(2.5, ([], []))) == 2.5
    assert weights(2.5, ([], [])).shape == (0,)
    assert weights(jnp.ones(2), (jnp.zeros((0, 2, 2)), jnp.zeros((0, 2)))).shape == (0, 2)
    with pytest.raises(ValueError, match=r"maps must be \(A, b\) .* got shapes \(3,\) and \(4,\)"):
        weights(1.0, (jnp.ones(3), jnp.ones(4)))
    with pytest.raises(ValueError, match=r"w0 must have the maps' weight shape \(\), got \(2,\)"):
        final_weight(jnp.ones(2), halves)
    with pytest.raises(ValueError, match="group must be a whole number >= 2, got 1"):
        composition(halves, 1)  # rows of 1 would never shrink
    with pytest.raises(ValueError, match="steps must be a whole number >= 1, got 0"):
        affine_sgd.learning_rates(optax.sgd(0.01), 1.0, 0)


@pytest.mark.parametrize("optimizer, reason", [
    (optax.sgd(0.1, momentum=0.9), "state depends on the gradients"),
    (optax.adam(0.1), "state depends on the gradients"),
    (optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)), "not -lr * gradient"),
    (optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(0.1)), "not -lr * gradient"),
    (optax.chain(optax.scale_by_sign(), optax.sgd(0.1)), "not -lr * gradient"),
    (optax.sgd(jnp.array([0.1, 0.2, 0.3])), "not one scalar"),
    (optax.sgd(jnp.array([0.1, 0.2])), "a scalar learning rate or a schedule"),
])
def test_refuses_what_is_not_plain_sgd(optimizer: Any, reason: str) -> None:
    xs, ys = data(10, 3)
    with pytest.raises(ValueError, match=re.escape(reason)):
        train_parallel(linear, jnp.zeros(3), xs, ys, optimizer=optimizer, epochs=1)


@pytest.mark.parametrize("optimizer", [
    optax.sgd(1e-46),  # 0 in float32
    optax.set_to_zero(),  # an update that is always 0
    optax.sgd(optax.constant_schedule(1e-46)),  # a schedule, 0 at every step
])
def test_refuses_a_learning_rate_of_zero(optimizer: Any) -> None:
    """As the other trainers: a training that cannot move is an error, not w0 returned."""
    xs, ys = data(10, 1)
    with pytest.raises(ValueError, match="learning rate is 0 in the training dtype float32 at "
                                         "every step"):
        train_parallel(jb.loss, 0.0, xs, ys, optimizer=optimizer, epochs=1)
    decaying = optax.sgd(optax.linear_schedule(0.1, 0.0, 9))  # 0 only at its last step: fine
    w, _ = train_parallel(jb.loss, 0.0, xs, ys, optimizer=decaying, epochs=1)
    assert w != 0.0


@pytest.mark.parametrize("loss, got", [
    (lambda w, x, y: (w * x - y) ** 2 * jnp.ones(3), "got an array of shape (3,)"),
    (lambda w, x, y: ((w * x - y) ** 2, w), "got tuple"),
    (lambda w, x, y: None, "got None"),
])
def test_refuses_a_loss_that_is_not_one_real_number(loss: Any, got: str) -> None:
    with pytest.raises(TypeError, match=re.escape(f"loss must return a real scalar (loss(params, "
                                                  f"x, y) -> scalar), {got}")):
        train_parallel(loss, 0.0, *data(10, 1), optimizer=optax.sgd(0.1), epochs=1)


def test_refuses_a_schedule_that_turns_into_something_else() -> None:
    counted = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)  # a state that counts
    np.testing.assert_allclose(affine_sgd.learning_rates(counted, jnp.zeros(()), 4), [0.1] * 4)
    with pytest.raises(ValueError, match="state depends on the gradients"):  # holds the gradient
        affine_sgd.learning_rates(optax.sgd(0.1, momentum=0.0), jnp.zeros(()), 4)
    xs, ys = data(10, 1)
    optimizer = optax.sgd(lambda count: jnp.where(count < 5, 0.1, jnp.nan))
    with pytest.raises(ValueError, match=r"not finite \(at step 5\)"):
        train_parallel(jb.loss, 0.0, xs, ys, optimizer=optimizer, epochs=1)


@pytest.mark.parametrize("loss", [
    lambda w, x, y: (w * x - y) ** 2 + 1e-3 * w**3,
    lambda w, x, y: jnp.abs(w * x - y),
    lambda w, x, y: (jnp.tanh(w) * x - y) ** 2,
    lambda w, x, y: jnp.where(x > 0.9, (w * x - y) ** 4, (w * x - y) ** 2),  # on a few samples
])
def test_refuses_a_loss_that_is_not_quadratic(loss: Any) -> None:
    xs, ys = data(200, 1)
    with pytest.raises(ValueError, match="quadratic in the parameters"):
        train_parallel(loss, 1.0, xs, ys, optimizer=optax.sgd(0.1), epochs=1)


@pytest.mark.parametrize("loss, w0", [
    (jb.loss, 1.0),  # the lecture's (w x - y)^2
    (linear, jnp.ones(3)),  # linear regression with d features
    (lambda w, x, y: jnp.mean(jnp.square(w * x - y)) / 2 + 0.1 * jnp.sum(w * w), jnp.ones(3)),
    (lambda w, x, y: jnp.where(x[0] > 0, 1.0, 2.0) * (jnp.dot(w, x) - y) ** 2, jnp.ones(3)),
])
def test_the_structural_check_accepts_quadratics(loss: Any, w0: Any) -> None:
    affine_sgd.check_quadratic(loss, w0, jnp.ones_like(w0), 1.0)


@pytest.mark.parametrize("loss, named", [
    (lambda w, x, y: (jnp.tanh(w) * x - y) ** 2, "applies tanh to the parameters"),
    (lambda w, x, y: jnp.exp(w * x) - y, "applies exp to the parameters"),
    (lambda w, x, y: jnp.abs(w * x - y), "applies abs to the parameters"),
    (lambda w, x, y: jax.nn.relu(w * x - y), "applies max to the parameters"),
    (lambda w, x, y: (x / w - y) ** 2, "divides by the parameters"),
    (lambda w, x, y: jnp.where(w > 0, w, 0.0), "applies gt to the parameters"),
    (lambda w, x, y: (w * x - y) ** 2 + w**3, r"degree 3 in them \(integer_pow raises it"),
    (lambda w, x, y: w * w * w * x, r"degree 3 in them \(mul raises it"),
])
def test_the_structural_check_names_what_is_not_quadratic(loss: Any, named: str) -> None:
    with pytest.raises(ValueError, match="quadratic in the parameters.*" + named):
        affine_sgd.check_quadratic(loss, 1.0, 2.0, 3.0)


def test_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="record must be"):
        train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(0.1), epochs=1, record="all")
    with pytest.raises(ValueError, match="epochs must be"):
        train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(0.1), epochs=0)
    with pytest.raises(ValueError, match="same length|one length"):
        train_parallel(jb.loss, 1.0, [1.0, 2.0], [1.0], optimizer=optax.sgd(0.1), epochs=1)
    with pytest.raises(ValueError, match=r"epochs must be at most 2,147,483,647"):
        train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(0.1), epochs=10**10)
    schedule = optax.sgd(optax.linear_schedule(0.01, 0.001, 100))
    with pytest.raises(ValueError, match=r"schedule probes each of its epochs x samples = "
                                         r"2,400,000,000 steps, at most 2,147,483,647"):
        train_parallel(jb.loss, *LECTURE, optimizer=schedule, epochs=800_000_000, record="final")


def test_refuses_what_would_not_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps of every step, held for record='steps' or a schedule, are counted before
    anything is built (per step: A, b, the rate, the weight, the loss and the gradient)."""
    monkeypatch.setattr(affine_sgd.check, "SMALL", 0)
    monkeypatch.setattr(affine_sgd.check, "memory_limit", lambda: 10**8)
    epochs = 10**6  # 3e6 steps x 6 numbers x 4 bytes = 72 MB > half of 100 MB; history 24 MB
    with pytest.raises(MemoryError, match=r"record='steps' holds every step's affine map: "
                                          r"3,000,000 steps .* about 7.2e\+07 bytes"):
        train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(0.01), epochs=epochs)
    schedule = optax.sgd(optax.linear_schedule(0.01, 0.001, 100))
    with pytest.raises(MemoryError, match="with a learning-rate schedule holds every step's"):
        train_parallel(jb.loss, *LECTURE, optimizer=schedule, epochs=epochs, record="final")
    # a constant rate holds one epoch's maps, whatever the number of epochs
    w, _ = train_parallel(jb.loss, *LECTURE, optimizer=optax.sgd(0.01), epochs=epochs,
                          record="final")
    assert abs(float(w) - 2.0) < 1e-6


@pytest.mark.parametrize("record", ["final", "epochs"])
def test_a_constant_rate_is_not_copied_per_epoch(record: str) -> None:
    """The compiled program's scratch memory does not grow with the epochs (it held 8
    bytes per epoch: the epoch's map broadcast to every epoch)."""
    x, y = (jnp.asarray(v, jnp.float32) for v in (lecture.X_DATA, lecture.Y_DATA))
    rates = affine_sgd.learning_rates(optax.sgd(0.01), np.float32(1.0), 3)

    def scratch(epochs: int) -> int:
        compiled = affine_sgd._train.lower(jb.loss, np.float32(1.0), jnp.asarray(rates), x, y,
                                           epochs=epochs, record=record).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert scratch(10**7) == scratch(10)


def test_compiles_once_for_new_values() -> None:
    xs, ys = data(64, 1)
    train_parallel(jb.loss, 1.0, xs, ys, optimizer=optax.sgd(0.1), epochs=1)
    before = affine_sgd._train._cache_size()
    train_parallel(jb.loss, 2.0, xs * 2, ys, optimizer=optax.sgd(0.05), epochs=1)
    assert affine_sgd._train._cache_size() == before
    assert affine_sgd.learning_rates(optax.sgd(0.05), 1.0, 64) == np.float32(0.05)


@pytest.mark.parametrize("record", ["steps", "final"])
def test_a_sample_that_is_not_finite_is_found_in_the_program_and_named(record: str) -> None:
    xs, ys = data(40, 1)
    sgd = optax.sgd(0.1)
    bad_x = xs.copy()
    bad_x[17] = np.nan
    with pytest.raises(ValueError, match=re.escape("xs[17] must be finite, got nan")):
        train_parallel(jb.loss, 0.5, bad_x, ys, optimizer=sgd, epochs=2, record=record)
    huge = xs.astype(np.float64)
    huge[3] = 1e39  # finite in float64, not in the float32 training
    with pytest.raises(ValueError, match=r"xs\[3\] must be finite in the training dtype "
                                         r"float32, got 1e\+39, which overflows it"):
        train_parallel(jb.loss, np.float32(0.5), huge, ys, optimizer=sgd, epochs=1,
                       record=record)
    bad_y = ys.copy()
    bad_y[5] = np.inf  # even a loss that never reads y does not train on it
    with pytest.raises(ValueError, match=re.escape("ys[5] must be finite, got inf")):
        train_parallel(lambda w, x, y: (w * x) ** 2, 0.5, xs, bad_y, optimizer=sgd, epochs=1,
                       record=record)


def test_the_probe_is_traced_once_per_optimizer() -> None:
    xs, ys = data(64, 1)
    sgd = optax.sgd(0.1)
    train_parallel(jb.loss, 1.0, xs, ys, optimizer=sgd, epochs=1)
    before = affine_sgd._rates._cache_size()
    train_parallel(jb.loss, 2.0, xs * 2, ys, optimizer=sgd, epochs=1, record="final")
    assert affine_sgd._rates._cache_size() == before


# ---------------------------------------------------------------------------------------
# Through train_scan(method="parallel")


@pytest.mark.parametrize("record", ["steps", "epochs", "final"])
def test_train_scan_parallel_agrees_with_sequential(record: str) -> None:
    xs, ys = data(70, 1)
    sgd = optax.sgd(0.1)
    w, history = jb.train_scan(jb.loss, 0.5, xs, ys, optimizer=sgd, epochs=3, record=record,
                               method="parallel")
    w_seq, seq = jb.train_scan(jb.loss, 0.5, xs, ys, optimizer=sgd, epochs=3, record=record)
    np.testing.assert_allclose(w, w_seq, rtol=1e-5)
    for field in history._fields:
        got, want = getattr(history, field), getattr(seq, field)
        assert (got is None) == (want is None), field
        if want is not None:
            assert np.shape(got) == np.shape(want), field
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=field)


def test_train_scan_parallel_prints_the_notes_trace() -> None:
    w, history = jb.train_scan(jb.loss, *LECTURE, optimizer=optax.sgd(lecture.LEARNING_RATE),
                               method="parallel")
    assert at_printed_precision(history.grads[: len(GRADS)]) == at_printed_precision(GRADS)
    assert f"{float(jb.predict(w, lecture.X_PREDICT)):.4f}" == "7.8049"


def test_train_scan_refuses_a_misspelt_method_and_what_parallel_cannot_honour() -> None:
    with pytest.raises(ValueError, match="method must be one of 'sequential', 'parallel'"):
        jb.train_scan(jb.loss, *LECTURE, optimizer=optax.sgd(0.01), method="paralel")
    for extra, name in (({"engine": "tape"}, "engine"), ({"on_step": print}, "on_step"),
                        ({"learning_rate": 0.02}, "learning_rate")):
        with pytest.raises(ValueError, match=f"method='parallel'.*got {name}"):
            jb.train_scan(jb.loss, *LECTURE, optimizer=optax.sgd(0.01), method="parallel",
                          **extra)
    with pytest.raises(ValueError, match="quadratic in the parameters"):
        jb.train_scan(lambda w, x, y: (w * w * x - y) ** 2, *LECTURE,
                      optimizer=optax.sgd(0.01), method="parallel")


@pytest.mark.parametrize("record", ["steps", "final"])
def test_divergence_is_reported_as_by_the_sequential_trainer(record: str) -> None:
    with pytest.raises(jb.DivergenceError) as parallel:
        jb.train_scan(jb.loss, *LECTURE, optimizer=optax.sgd(10.0), epochs=60, record=record,
                      method="parallel")
    with pytest.raises(jb.DivergenceError) as sequential:
        jb.train_scan(jb.loss, *LECTURE, optimizer=optax.sgd(10.0), epochs=60, record=record)
    assert (parallel.value.epoch, parallel.value.sample) == (sequential.value.epoch,
                                                             sequential.value.sample)


def test_the_experiment_runs_quick(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                   capsys: Any) -> None:
    import runpy
    import sys
    from pathlib import Path

    experiments = Path(__file__).resolve().parent.parent / "experiments"
    monkeypatch.syspath_prepend(str(experiments))
    monkeypatch.setattr(sys, "argv", ["parallel_sgd.py", "--quick", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(experiments / "parallel_sgd.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "w <- 0.739312 w + 0.521376" in out  # (0.82 0.92 0.98, ...) composed by hand
    assert "predict 4 -> 7.8049" in out and "7.3159 3.9988 2.1857" in out
    agree = re.search(r"every form's final weight is within (\S+) \(relative\)", out)
    assert agree and float(agree.group(1)) < 1e-5  # every form, the trainer's too, agrees
    assert {p.name for p in tmp_path.iterdir()} == {"lecture_maps.csv", "timing.csv",
                                                   "timing.png", "forms.csv", "features.csv",
                                                   "accuracy.csv"}
