# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the lecture: one compiled program, thousands of trainings, many devices
#
# The lecture's loop runs one step at a time, and every step goes back to Python. JAX can
# do better with the very same loss: compile the whole training into one program, even
# run its steps as a parallel scan, run thousands of trainings in one call with
# `jax.vmap`, and spread them across devices with `jax.sharding`. This notebook does
# each, checks each against the lecture's loop, trains a small network with the same
# tools, and reads the benchmark's headline numbers.
#
# To show sharding on an ordinary laptop, the first cell asks XLA for eight CPU devices.
# It must run before JAX starts; on a machine with accelerators, drop it.

# %%
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import json
from pathlib import Path

import jax
import numpy as np
import optax
from IPython.display import Markdown, display

import jaxbackprop as jb
from jaxbackprop import lecture, mlp

# %% [markdown]
# ## The training as one compiled program
#
# `jb.train_scan` runs the lecture's per-sample training as one XLA program: a
# `lax.scan` over the samples inside a `lax.scan` over the epochs. The learning rate,
# the initial weight and the data are arguments of the program, so new values reuse
# the compiled code. It gives the lecture's trajectory:

# %%
settings = dict(optimizer=optax.sgd(lecture.LEARNING_RATE), epochs=lecture.EPOCHS)
w_loop, loop = jb.train_per_sample(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, **settings)
w_scan, scan = jb.train_scan(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, **settings)
print("loss after each epoch (scan):", [f"{e:.4f}" for e in scan.epoch_loss])
print(f"final w: loop {float(w_loop):.7f}, scan {float(w_scan):.7f}")
ulps = np.abs(np.asarray(w_scan).view(np.int32) - np.asarray(w_loop).view(np.int32))
print("they differ by", int(ulps), "units in the last place of float32")

# %% [markdown]
# Compiled code may round once where eager code rounds twice: XLA fuses `w * x - y`
# into one multiply-add. At the lecture's four printed decimals the two always agree.
#
# ## Steps that need not wait: the parallel scan
#
# Per-sample SGD looks sequential: each step needs the weight the previous one wrote.
# But for the lecture's quadratic loss one step is an *affine map* of $w$:
#
# $$w \leftarrow w - \eta \cdot 2x(wx - y) = (1 - 2\eta x^2)\,w + 2\eta x y = a\,w + b,$$
#
# and affine maps compose associatively, $(a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,
# a_2 b_1 + b_2)$. So a training of $N$ steps is a *prefix scan*: groups of steps are
# composed independently, all at once, in $O(\log N)$ dependent rounds instead of $N$.
# First the map of the lecture's first step, checked against optax's update:

# %%
eta, x, y, w = lecture.LEARNING_RATE, lecture.X_DATA[0], lecture.Y_DATA[0], lecture.W0
a, b = 1 - 2 * eta * x**2, 2 * eta * x * y
sgd_step = optax.sgd(eta)
updates, _ = sgd_step.update(jax.grad(jb.loss)(w, x, y), sgd_step.init(w))
print(f"a w + b = {a * w + b:.6f};  optax.sgd: w + update = {w + float(updates):.6f}")

# %% [markdown]
# `train_scan(method="parallel")` runs the whole training that way. It checks that the
# loss is quadratic in the parameters and the optimizer plain SGD, and refuses anything
# else rather than return a wrong answer:

# %%
w_par, par = jb.train_scan(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                           method="parallel", **settings)
print("loss after each epoch (parallel):", [f"{e:.4f}" for e in par.epoch_loss])
ulps = np.abs(np.asarray(w_par).view(np.int32) - np.asarray(w_scan).view(np.int32))
print(f"final w {float(w_par):.7f}, {int(ulps)} ulp from the sequential scan")
try:
    jb.train_scan(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, method="parallel",
                  optimizer=optax.adam(0.1), epochs=lecture.EPOCHS)
except ValueError as error:
    print("with optax.adam:", error)
#
# ## Many trainings at once: `jb.sweep`
#
# `jb.sweep` is the same program with the step mapped by `jax.vmap` over independent
# runs: here 64 learning rates from $10^{-3}$ to $1$ (the lecture's among them) in one
# call, each run training from the lecture's $w_0$ on its data. A run that diverges is
# not an error in a sweep; its loss is simply inf or NaN.

# %%
rates = np.unique(np.append(np.geomspace(1e-3, 1.0, 63), lecture.LEARNING_RATE))
sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=rates)  # the rate is data: one per run
w_final, sweep = jb.sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                          optimizer=sgd, epochs=lecture.EPOCHS, record="epochs")
final_loss = np.asarray(sweep.epoch_loss[:, -1])
finite = np.isfinite(final_loss)
lecture_run = int(np.flatnonzero(rates == lecture.LEARNING_RATE)[0])
best = int(np.argmin(np.where(finite, final_loss, np.inf)))
print(f"{rates.size} trainings in one call, final weights of shape {w_final.shape}")
print(f"the lecture's rate {lecture.LEARNING_RATE}: final loss {final_loss[lecture_run]:.4f} "
      f"(train_scan alone: {scan.epoch_loss[-1]:.4f})")
print(f"lowest final loss {final_loss[best]:.3g} at learning rate {rates[best]:.3f}")
print(f"diverged (inf or NaN) from learning rate {rates[~finite].min():.3f} on")

# %%
jb.draw.sweep_figure(rates, final_loss)

# %% [markdown]
# ## Devices and sharding
#
# `jb.devices` says what JAX sees, and picks a backend (`jb.devices.select("gpu")`
# raises an error of one line with the install command when there is none).

# %%
print(json.dumps(jb.devices.describe(), indent=1))
print(jb.devices.select("cpu"))

# %% [markdown]
# `jb.parallel.sharded_sweep` splits the runs of a sweep across the devices of a mesh
# (axis `"runs"`); each device trains its own runs, with no communication: the 64 runs
# above, eight per device. The result is one global array, sharded by run, and equal to
# the single-device sweep.

# %%
w_sharded, _ = jb.parallel.sharded_sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                         optimizer=sgd, epochs=lecture.EPOCHS)
print("devices holding the result:", len(w_sharded.sharding.device_set))
shards = w_sharded.addressable_shards
print("runs on each device:", sorted((s.device.id, s.data.shape[0]) for s in shards))
print("equal to the one-device sweep:",
      bool(np.allclose(np.asarray(w_sharded), w_final, rtol=1e-6, equal_nan=True)))

# %% [markdown]
# `jb.parallel.data_parallel_train` trains one model on the mean loss of minibatches,
# each batch split across the devices (axis `"data"`); XLA all-reduces the gradient so
# every device applies the same update. Here 4,096 noisy samples of $y = 2x$, batches
# of 512 split eight ways:

# %%
rng = np.random.default_rng(0)
xs = rng.uniform(-1, 1, 4096).astype(np.float32)
ys = (2 * xs + 0.1 * rng.normal(size=xs.size)).astype(np.float32)
w_dp, history = jb.parallel.data_parallel_train(jb.loss, 0.0, xs, ys, batch_size=512,
                                                optimizer=optax.sgd(0.5), epochs=20)
print(f"w after {history.losses.size} steps: {float(w_dp):.4f} "
      f"(least squares: {float(xs @ ys / (xs @ xs)):.4f})")

# %% [markdown]
# ## A network: the same tools on a multilayer perceptron
#
# The lecture asks how to compute the gradient "in a complicated network". Here is
# one: `jaxbackprop.mlp`, tanh layers and the logistic loss, written with operators and
# `jaxbackprop.numpy`, its parameters a pytree (a list of `(W, b)` pairs). The same
# `jb.train_scan` trains it with `optax.adam` (the whole batch as one "sample"), and
# the hand-written tape, here computing with NumPy alone, gives the gradient that
# `jax.grad` gives:

# %%
x_moons, y_moons = mlp.two_moons(200, seed=0)
params = mlp.init(jax.random.key(0), (2, 16, 16, 1))
g_jax = jax.jit(jax.grad(mlp.loss))(params, x_moons, y_moons)
g_tape = jb.tape.grad(mlp.loss)(jax.tree.map(np.asarray, params), x_moons, y_moons)  # NumPy
largest = max(float(np.max(np.abs(a - b))) for a, b in
              zip(jax.tree.leaves(g_jax), jax.tree.leaves(g_tape), strict=True))
print(f"largest difference between the tape's gradient and jax.grad's: {largest:.1e}")

trained, fit = jb.train_scan(mlp.loss, params, x_moons[None], y_moons[None],
                             optimizer=optax.adam(0.05), epochs=300)
print(f"loss {fit.epoch_loss[0]:.4f} -> {fit.epoch_loss[-1]:.4f}; "
      f"accuracy {float(mlp.accuracy(params, x_moons, y_moons)):.2f} -> "
      f"{float(mlp.accuracy(trained, x_moons, y_moons)):.2f}")

# %% [markdown]
# ## What it buys: the benchmark's headline ratios
#
# `jaxbackprop bench` measures every engine in one process and writes
# `docs/benchmarks.json`. For each case: every engine's median time per unit, the spread
# of the rounds (inter-quartile range), and the ratio to the case's baseline measured in
# the same run (above 1: faster than the baseline).

# %%
results = Path("..") / "docs" / "benchmarks.json"
if results.exists():
    bench = json.loads(results.read_text())
    lines = ["| case | engine | median per unit | IQR | x baseline |", "|---|---|---|---|---|"]
    for case in bench["cases"]:
        for row in case["rows"]:
            if row["status"] != "ok":
                continue
            lines.append(f"| {case['section']}: {case['label']} | {row['engine']} | "
                         f"{row['per_unit'] * 1e9:.3g} ns/{case['unit']} | "
                         f"{row['q1'] * 1e9 / case['units']:.3g} - "
                         f"{row['q3'] * 1e9 / case['units']:.3g} | "
                         f"{row['vs_baseline']:.3g}x ({case['baseline']}) |")
    meta = bench["meta"]
    display(Markdown("\n".join(lines)))
    print(f"measured {meta['date'][:10]} on {meta['cpu']}, JAX {meta['versions']['jax']}")
else:
    print("no docs/benchmarks.json here: run `jaxbackprop bench --out docs/benchmarks.json`")
