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
# # The first note: the chain rule, a graph, three steps
#
# The first lecture note teaches backpropagation on paper: the chain rule, a node of a
# computational graph with its *local gradients*, and the three steps (forward pass,
# local gradients, backward pass) worked out with numbers for the linear model
# $\hat y = w x$ and the squared error. Here every one of those numbers is computed by
# JAX, and every graph is drawn from the computation that produced it.

#
# The graphs need the `draw` extra (the `graphviz` package and the `graphviz-pure`
# renderer, both from PyPI): the first cell stops in one line if they are missing.

# %%
import importlib.util

import jax
from IPython.display import SVG, display

import jaxbackprop as jb
from jaxbackprop import lecture
from jaxbackprop.graph import format_number as num

if importlib.util.find_spec("graphviz") is None or jb.draw.find_renderer() is None:
    raise ModuleNotFoundError("the pictures need the draw extra: pip install 'jaxbackprop[draw]'")


def show(graph, view="backward"):
    """The graph in one of the lecture's three views, as an inline SVG picture."""
    return SVG(jb.draw.svg(graph, view))


# %% [markdown]
# ## The chain rule
#
# Two functions one after the other, $y = a(x)$ and $z = b(y)$. The derivative of the
# composite is the product of the two derivatives:
#
# $$\frac{dz}{dx} = \frac{dz}{dy}\,\frac{dy}{dx}.$$
#
# `lecture.chain_rule` takes $a(x) = x^2$ and $b(y) = \sin y$, differentiates each
# piece on its own with `jax.grad`, multiplies, and compares with `jax.grad` of the
# composite.

# %%
c = lecture.chain_rule()
print(f"x = {num(c.x)},  y = a(x) = x^2 = {num(c.y)},  z = b(y) = sin(y) = {num(c.z)}")
print(f"dy/dx = 2x     = {num(c.dy_dx)}")
print(f"dz/dy = cos(y) = {num(c.dz_dy)}")
print(f"dz/dy * dy/dx  = {num(c.dz_dx_chain)}")
print(f"jax.grad(lambda x: b(a(x)))(x) = {num(c.dz_dx_jax)}")

# %%
show(jb.draw.chain_rule_graph(c))

# %% [markdown]
# ## A node and its local gradients: $z = x \cdot y$
#
# At every node of the graph we know the function, so we know its partial derivatives:
# for $z = x y$ they are $\partial z/\partial x = y$ and $\partial z/\partial y = x$.
# Once $\partial L/\partial z$ arrives from later in the graph, the chain rule gives
# $\partial L/\partial x = \partial L/\partial z \cdot y$ and
# $\partial L/\partial y = \partial L/\partial z \cdot x$.

# %%
node = lecture.multiply_node()
print(node.table("local"))

# %%
show(node, "local")

# %% [markdown]
# ## The three steps, with numbers
#
# The model $\hat y = w x$, the residual $s = \hat y - y$ and the loss $L = s^2$, for
# the note's sample and initial weight:

# %%
x, y, w = lecture.EXAMPLE_FIRST_NOTE
print(f"x = {num(x)}, y = {num(y)}, w = {num(w)}")
graph = lecture.linear_regression(x=x, y=y, w=w)

# %% [markdown]
# ### 1. Forward pass: compute the loss

# %%
print(graph.table("forward"))
print()
print("loss =", num(graph.value("L").value))

# %%
show(graph, "forward")

# %% [markdown]
# ### 2. Local gradients at each node
#
# Each node differentiated on its own by `jax.grad`. The edges from $x$ and $y$ are the
# lecture's red lines: they are fixed data, so training never needs their gradients.

# %%
print(graph.table("local"))

# %%
show(graph, "local")

# %% [markdown]
# ### 3. Backward pass: the chain rule from the loss back to $w$
#
# Start from $\partial L/\partial L = 1$ and multiply by one local gradient per edge:
# $\partial L/\partial \hat y = \partial L/\partial s \cdot \partial s/\partial \hat y$,
# then $\partial L/\partial w = \partial L/\partial \hat y \cdot \partial \hat y/\partial w$.

# %%
print(graph.table("backward"))
print()
print("dL/dw =", num(graph.value("w").adjoint))

# %%
show(graph, "backward")

# %% [markdown]
# A graph also displays itself (as the last line of a cell, or with `display`): a page
# that steps through the three steps with the arrow keys, the picture where that page
# cannot run, and the table above as its text form.

# %%
display(graph)

# %% [markdown]
# ## The same, from JAX and from the hand-written tape
#
# The note ends with PyTorch: `loss.backward()` then `w.grad`. In JAX the gradient is a
# function, `jax.grad(jb.loss)`, evaluated where we like. `jb.tape.grad` is this
# project's reverse mode, written out by hand (notebook 03 opens it up). All three
# routes agree with the closed form $2 s x$.

# %%
print("loss                  =", num(jb.loss(w, x, y)))
print("jax.grad(loss)        =", num(jax.grad(jb.loss)(w, x, y)))
print("jb.tape.grad(loss)    =", num(jb.tape.grad(jb.loss)(w, x, y)))
print("2 s x (closed form)   =", num(jb.loss_grad(w, x, y)))
assert jax.grad(jb.loss)(w, x, y) == graph.value("w").adjoint == jb.loss_grad(w, x, y)
