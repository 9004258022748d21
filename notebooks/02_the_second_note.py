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
# # The second note: $\partial L/\partial w = 2sx$, then training
#
# The second note writes the lecture's backward pass as one formula and then trains the
# model: per-sample gradient descent on three points, ten epochs, printing every
# gradient. Here the formula is checked three ways, and the training loop runs with
# `jax.grad` and [optax](https://optax.readthedocs.io) and prints the note's trace.

# %%
import jax
import jax.numpy as jnp
import numpy as np
import optax
from IPython.display import display

import jaxbackprop as jb
from jaxbackprop import lecture
from jaxbackprop.graph import format_number as num

# %% [markdown]
# ## The derivation
#
# With $\hat y = x w$, $s = \hat y - y$ and $L = s^2$, one local gradient per node:
#
# $$\frac{\partial L}{\partial s} = 2s, \qquad
#   \frac{\partial s}{\partial \hat y} = 1, \qquad
#   \frac{\partial \hat y}{\partial w} = x,$$
#
# and by the chain rule
#
# $$\frac{\partial L}{\partial w} =
#   \frac{\partial L}{\partial s}\,\frac{\partial s}{\partial \hat y}\,
#   \frac{\partial \hat y}{\partial w} = 2 s x.$$
#
# At the note's example:

# %%
x, y, w = lecture.EXAMPLE_SECOND_NOTE
s = jb.predict(w, x) - y
print(f"x = {num(x)}, y = {num(y)}, w = {num(w)}:  s = w x - y = {num(s)}")
print("2 s x (closed form)      =", num(jb.loss_grad(w, x, y)))
print("jax.grad(loss)(w, x, y)  =", num(jax.grad(jb.loss)(w, x, y)))
print("tape.grad(loss)(w, x, y) =", num(jb.tape.grad(jb.loss)(w, x, y)))

# %% [markdown]
# The tape records the same three nodes and runs the same chain rule backwards
# (`tape.walkthrough` returns every number on the way):

# %%
print(jb.tape.walkthrough(jb.loss, w, x, y).table("backward"))

# %% [markdown]
# ## The training loop
#
# The note's loop in PyTorch computes a loss per sample, calls `l.backward()`, prints the
# gradient and steps `w = w - 0.01 * grad`. In JAX the step is a pure function: the
# gradient comes from `jax.value_and_grad`, the update from `optax.sgd`, and the whole
# step is compiled once by `jax.jit`. The data, the initial weight, the learning rate
# and the number of epochs are the lecture's, from `jaxbackprop.lecture`.

# %%
optimizer = optax.sgd(lecture.LEARNING_RATE)


@jax.jit
def step(w, opt_state, x, y):
    loss, grad = jax.value_and_grad(jb.loss)(w, x, y)
    updates, opt_state = optimizer.update(grad, opt_state)
    return optax.apply_updates(w, updates), opt_state, loss, grad


w = jnp.asarray(lecture.W0)
opt_state = optimizer.init(w)
x_predict = lecture.X_PREDICT
print("Predict (before training)", num(x_predict), f"{jb.predict(w, x_predict):.4f}")
for epoch in range(lecture.EPOCHS):
    for x, y in zip(lecture.X_DATA, lecture.Y_DATA, strict=True):
        w, opt_state, loss, grad = step(w, opt_state, x, y)
        print("\tgrad: ", x, y, f"{grad:.4f}")
    print("progress:", epoch, f"{loss:.4f}")
print("predict (after training)", num(x_predict), f"{jb.predict(w, x_predict):.4f}")

# %% [markdown]
# These are the note's numbers, to its four printed decimals (the note's own trace is
# cut off after the gradients of epoch 7; the loop here runs all ten epochs).
#
# `jb.train_per_sample` is this loop as a library function: it returns the final weight
# and a history of every step instead of printing (the library never prints).

# %%
w_final, history = jb.train_per_sample(
    jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
    optimizer=optax.sgd(lecture.LEARNING_RATE), epochs=lecture.EPOCHS)
print("gradients of epoch 0:", [f"{g:.4f}" for g in history.grads[0]])
print("loss after each epoch:", [f"{e:.4f}" for e in history.epoch_loss])
print("the same final weight as the loop above:", bool(w_final == w))
display(history)

# %% [markdown]
# ## The curves
#
# The loss of every step, the loss the note prints after each epoch, and the weight
# climbing towards the true slope 2 (the figures need the `draw` extra:
# `pip install 'jaxbackprop[draw]'`).

# %%
weights = np.concatenate([[lecture.W0], np.ravel(history.params)])
jb.draw.training_figure(history.losses, history.epoch_loss, weights)
