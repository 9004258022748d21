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
# # The tape: reverse mode on any function
#
# `loss.backward()` in PyTorch, `jax.grad` in JAX: both do the lecture's three steps on
# whatever function you write. `jaxbackprop.tape` does them in a few hundred readable
# lines, with the same signatures as JAX, so you can watch it work. This notebook
# records a function, reads the recording, runs the backward pass by hand, then lets
# `tape.walkthrough` show the three steps for a function of your own.

# %%
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import SVG

import jaxbackprop as jb
import jaxbackprop.numpy as jbnp
from jaxbackprop import lecture, tape
from jaxbackprop.graph import format_number as num
from jaxbackprop.tape.core import backward_pass, local_gradients, push_forward, recording

# %% [markdown]
# ## 1. Recording
#
# Inside `recording()` a fresh tape is open. Its input variables are tape values
# (`Var`); every operation on one runs the *forward pass* of its primitive
# (`core.forward_pass`): it computes the output and appends an *equation* to the tape,
# in the order it runs. `jb.loss` is the lecture's loss, written with plain operators,
# so it records its three nodes.

# %%
x, y, w = lecture.EXAMPLE_FIRST_NOTE
with recording() as t:
    w_var, x_var, y_var = t.new_var(w), t.new_var(x), t.new_var(y)
    L = jb.loss(w_var, x_var, y_var)

print("variable  primitive    parents  inputs        out")
for index, eq in enumerate(t.equations, start=t.num_inputs):
    inputs = ", ".join(num(v) for v in eq.inputs)
    print(f"{index:<9} {eq.primitive.name:<12} {str(eq.parents):<8} {inputs:<13} {num(eq.out)}")

# %% [markdown]
# Variables 0, 1 and 2 are the inputs $w, x, y$; each equation defines the next
# variable. A parent of `None` would be a constant. The list is in execution order,
# which is already a topological order of the graph: that is all the backward pass needs.
#
# ## 2. Local gradients
#
# Each primitive carries its local derivative beside its forward rule, as a formula and
# as a function of the recorded values; `core.local_gradients` evaluates them:

# %%
for index, eq in enumerate(t.equations, start=t.num_inputs):
    names = [f"v{p}" for p in eq.parents]
    formulas = eq.primitive.formulas(f"v{index}", *names, **eq.params)
    for name, formula, value in zip(names, formulas, local_gradients(eq), strict=True):
        print(f"d v{index} / d {name} = {formula:<4} = {num(value)}")

# %% [markdown]
# ## 3. The backward pass
#
# `core.backward_pass` seeds the output's cotangent with $\partial L/\partial L = 1$ and
# walks the equations in reverse, handing each input its share
# $\bar v_\text{in} \mathrel{+}= \bar v_\text{out} \cdot
# \partial v_\text{out}/\partial v_\text{in}$. A plain loop: no recursion, no sort.

# %%
cotangents = backward_pass(t, L.index, 1.0)
print("dL/dw =", num(cotangents[w_var.index]))
print("dL/dx =", num(cotangents[x_var.index]), "  (computed, though training never needs it)")

# %% [markdown]
# `tape.vjp` and `tape.grad` wrap exactly these three steps with JAX's signatures, so
# one function can go to both engines:

# %%
print("tape.grad(loss)(w, x, y) =", num(tape.grad(jb.loss)(w, x, y)))
print("jax.grad(loss)(w, x, y)  =", num(jax.grad(jb.loss)(w, x, y)))
out, pullback = tape.vjp(jb.loss, w, x, y)
print("tape.vjp: L =", num(out), "and the pullback of 1 gives",
      tuple(num(v) for v in pullback(1.0)))

# %% [markdown]
# ## A function of your own: $\tanh(w x + b)$
#
# Write it with operators and `jaxbackprop.numpy` (it works on tape values and on
# ordinary numbers and arrays alike). `tape.walkthrough` records it, runs the backward
# pass, and returns every number on the way as a graph; `argnums` says which inputs are
# parameters (the others are data, drawn as the lecture's red lines). The values take
# the names of the variables that hold them.

# %%
def neuron(w, b, x):
    wx = w * x
    z = wx + b
    a = jbnp.tanh(z)
    return a


walk = tape.walkthrough(neuron, 0.5, -0.25, 2.0, argnums=(0, 1))
print(walk.table("backward"))

# %% [markdown]
# Drawn (this needs the `draw` extra; the cell says so in one line if it is missing):

# %%
if importlib.util.find_spec("graphviz") is None or jb.draw.find_renderer() is None:
    raise ModuleNotFoundError("the pictures need the draw extra: pip install 'jaxbackprop[draw]'")
SVG(jb.draw.svg(walk, "backward"))

# %% [markdown]
# The same gradients from JAX and from the closed form
# $\partial/\partial w \tanh(wx + b) = (1 - \tanh^2(wx+b))\,x$:

# %%
w_n, b_n, x_n = 0.5, -0.25, 2.0
dw_tape, db_tape = tape.grad(neuron, argnums=(0, 1))(w_n, b_n, x_n)
dw_jax, db_jax = jax.grad(neuron, argnums=(0, 1))(w_n, b_n, x_n)
closed = 1 - np.tanh(w_n * x_n + b_n) ** 2
print(f"tape: dw = {dw_tape:.6f}, db = {db_tape:.6f}")
print(f"jax : dw = {dw_jax:.6f}, db = {db_jax:.6f}")
print(f"closed form: dw = {closed * x_n:.6f}, db = {closed:.6f}")

# %% [markdown]
# ## Forward mode beside reverse mode
#
# Reverse mode (`vjp`) pulls one output cotangent back to *every* input in one pass.
# Forward mode (`jvp`) pushes one input tangent forward to the output: the directional
# derivative. For $f(w, b) = \tanh(wx + b)$ the tangent $(\dot w, \dot b) = (1, 0)$
# gives $\partial f/\partial w$, and $(0, 1)$ gives $\partial f/\partial b$: two passes
# forward, where one pass backward gave both.

# %%
def f(w, b):
    return neuron(w, b, x_n)


for tangent in [(1.0, 0.0), (0.0, 1.0)]:
    value, derivative = tape.jvp(f, (w_n, b_n), tangent)
    _, derivative_jax = jax.jvp(f, (w_n, b_n), tangent)
    print(f"tape.jvp, tangent {tangent}: f = {value:.6f}, directional derivative = "
          f"{derivative:.6f}  (jax.jvp: {derivative_jax:.6f})")
value, pullback = tape.vjp(f, w_n, b_n)
print("tape.vjp, one pass back:", tuple(f"{g:.6f}" for g in pullback(1.0)))

# %% [markdown]
# `tape.jvp` records the forward pass, then walks the same equations *forwards*
# (`core.push_forward`), multiplying each tangent by the same local gradients the
# backward pass uses. On the tape recorded in section 1, the tangent
# $(\dot w, \dot x, \dot y) = (1, 0, 0)$ arrives at $L$ as $\partial L/\partial w$:

# %%
tangents = push_forward(t, [1.0, 0.0, 0.0])
print("dL/dw forward:", num(tangents[L.index]), "  backward:", num(cotangents[w_var.index]))

# %% [markdown]
# ## JAX transforms the tape
#
# The tape's rules are written with the same dual functions, so the whole tape traces
# under `jax.jit`, `jax.vmap` and `jax.grad`: here the tape's gradient of the loss,
# compiled and mapped over the lecture's three samples, and its second derivative
# $\partial^2 L/\partial w^2 = 2x^2$.

# %%
xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)
per_sample = jax.jit(jax.vmap(tape.grad(jb.loss), in_axes=(None, 0, 0)))
print("tape gradients per sample at w = 1:", per_sample(1.0, xs, ys))
print("d2L/dw2 at x = 2 (tape on the tape):", num(tape.grad(tape.grad(jb.loss))(1.0, 2.0, 4.0)))
