"""Per-sample SGD on a quadratic loss as a linear recurrence, solved by a parallel scan.

One SGD step on sample ``i`` with learning rate ``lr`` is, for a loss quadratic in the
parameters ``w`` (gradient ``g_i(w) = H_i w + c_i``, ``H_i`` the constant Hessian and
``c_i = g_i(0)``), an *affine map* of ``w``::

    w  <-  w - lr g_i(w)  =  (I - lr H_i) w - lr c_i  =  A_i w + b_i

For the lecture's ``L = (w x - y)^2``: ``H_i = 2 x^2``, ``c_i = -2 x y``, so
``a_i = 1 - 2 lr x^2`` and ``b_i = 2 lr x y``; with ``d`` features
``A_i = I - 2 lr x x^T`` and ``b_i = 2 lr y x``. Affine maps compose associatively::

    (A2, b2) after (A1, b1)  =  (A2 A1, A2 b1 + b2)

so the ``N`` steps of a training need not run one after the other: group them, compose
each group's maps (all groups at once), and recurse on the groups' maps. That is a
prefix scan (Blelloch 1990; Martin and Cundy 2018 for linear recurrences): ``O(N)`` work
in ``O(log N)`` dependent rounds, where the sequential loop has ``N`` dependent steps.

The form kept here is a radix-``GROUP`` scan. For the final weight: split the maps into
rows of ``GROUP`` consecutive maps and compose each row in order, every row at once, until
one map is left (:func:`_level`, one fused pass per level). The first level reads the data:
the maps are built from ``x_i, y_i`` inside the loop that composes them, so the data is
read once and no map is written out (the level's result is one array behind an
``optimization_barrier``; without it XLA writes the maps first, 2.0 ms against 0.6 ms at
N = 1e6). For every weight (:func:`weights`): the rows' maps
(:func:`_level`), each row's starting weight from this same function on them, then every
weight in one pass, each row replaying its maps from its start. The per-step weights
then give the losses and gradients in one ``jax.vmap``-ed pass.

Where each form wins, measured on this project's 2-core CPU (AMD EPYC, AVX2),
2026-11-30, nothing else running (``python experiments/parallel_sgd.py --sizes 3 4 5 6
--forms``, the final weight after N = 1e6 steps from device arrays, median of 7
interleaved rounds, one call each): the sequential floor (``lax.scan`` of ``w = a w + b``,
one fused multiply-add per step) 3.35 ms; radix-2, 4 and 8 scans 2.13, 1.44 and 1.82 ms
(1.58x, 2.33x and 1.84x the floor); a pairwise tree inside chunks of 1024 4.58 ms; a
``lax.scan`` inside chunks of 256 ``jax.vmap``-ed across chunks 7.23 ms;
``jax.lax.associative_scan`` 14.7 ms. ``associative_scan`` computes every prefix, with
strided slices and interleaves at each of its ``2 log2 N`` levels: a pass over memory
each. The pairwise tree pays a pass per tree level; the chunked ``lax.scan`` a loop
iteration per step of a chunk, on short vectors, and a transpose. One radix-``k`` level
is one fused loop that reads its input once and leaves ``k`` times fewer maps. Why 4:
XLA vectorises a level by loading ``k`` rows' worth of maps at once and de-interleaving
them with shuffles; in the optimised LLVM IR of a row of 8 (``XLA_FLAGS=--xla_dump_to=DIR``)
the elementwise work is repeated on the whole 64-float load for each of the 8 slices,
and a row of 2 leaves twice the maps to the next level. The same rows of 4 serve
every weight (rows of 2 and 4 were even there, 8 1.3x slower). Replaying each row from
its start beat composing the rows' prefixes (8.8 against 12.6 ms, minima); forms that
lay the rows out across lanes (the data transposed to ``(k, N / k)``, then a
``lax.scan`` or an unrolled loop over ``k`` on contiguous vectors) lost 2-3x: XLA's
transposes of 4 MB cost 0.25-1 ms each, and it fuses the transposes back into strided
loops. On a GPU, with thousands of lanes, ``associative_scan`` is the natural form (not
measured here).

What that buys end to end, measured 2026-11-30. In the benchmark (``jaxbackprop bench
--rounds 15``, N = 1e6 float32 samples already on the device, medians; docs/benchmarks.md):
every step kept, the parallel trainer 5.59 ns/step against the sequential
``train_scan``'s 11.3 (2.02x; 1.67-2.02x over eight runs); the final weight 2.02 ns/step
against the floor's 3.06 (1.51x; 1.25-1.54x) and ``train_scan``'s 7.77 (3.8x; 2.9-3.8x). The scan
alone is 1.6-2.3x the floor (the forms above); a call adds the program's checks (every
sample finite, the terms of any quadratic loss), the argument checks and two dispatches.
With every step kept the scan writes the weights and reads them again for the losses and
gradients, which XLA computes in two loops that each read the data again, where the
sequential loop makes one pass. Below N = 1e5 the fixed cost of a call (about 0.7 ms at
N = 1e3, against the floor's 0.2) makes it lose (``python experiments/parallel_sgd.py
--sizes 3 4 5 6 --forms --features 1 2 3 4 5 8``: the crossover against ``train_scan``
is N = 1e5, against the floor N = 1e6). With ``d`` features a composition is a ``d x d``
product (:func:`_matmul`) against the sequential step's ``O(d)``; at N = 1e5 the parallel
trainer was 3.2-4.0x faster than the sequential one with every step kept at ``d = 2, 3,
4``, 2.2x at ``d = 5`` and 0.59x at ``d = 8`` (final weight: 4.5-7.0x, 2.5x, 0.64x).
Much of that gain is the sequential step's: its ``jnp.dot`` of two d-vectors is a small
product per step on XLA's CPU backend (28 ms at ``d = 2`` against 3.6 ms at ``d = 1``).
The method is the lesson: per-sample SGD is not bound to its chain of dependent steps
when each step is affine; the hardware that profits is one with many more lanes than
this CPU's.

Accuracy: the scan rounds in another order than the loop. It forms products of many
``a_i`` and sums ``a2 b1 + b2`` in tree order, where the loop rounds once per step; in
general neither is the more exact. At N = 1e6 in float32, against a float64 loop
(``python experiments/parallel_sgd.py --sizes 6 --accuracy``): the final weight 1.36 ulp
off (1.6e-7 relative; the sequential ``train_scan``'s 0.36 ulp), the weight before each
step at most 16.6 ulp off (a float32 loop of the same maps: 20.4 ulp), each step's loss
within 1.4e-6 of ``train_scan``'s. The tests hold it to 1e-5 and 1e-4.

Which problems: this solves per-sample SGD *exactly* (up to rounding) only when each
step is affine: the loss must be quadratic in the parameters (its Hessian does not depend
on them), and the optimizer must be plain SGD (``updates = -lr_k g``, with a constant or
scheduled rate and nothing else). Both are *checked*, not taken on trust, because a
wrong answer would be silent. The loss is checked exactly, once, when the training is
compiled, from its program (:func:`check_quadratic`): each value's degree in the
parameters is read off the loss's jaxpr, and any operation that is not a polynomial
(``tanh``, ``abs``, ``max``, a division by the parameters...) or a degree above 2 is
refused, naming the operation; nothing is evaluated per sample. The optimizer is probed
with two unrelated gradients (the second with signs and magnitudes up to ``2^20``) at a
random point: both updates must be ``-lr_k`` times the gradient, for one scalar
``lr_k``, and the next state must not depend on the gradient; a stateful optimizer (a
schedule) is probed at every step. The probe depends only on the optimizer object, the
step count and the parameters' shapes, so it runs while :func:`_rates` is traced and
jit's cache keeps the rates: a later call costs one dispatch (0.02 ms). Momentum, Adam,
weight decay and clipping below ``2^20`` fail this probe; a probe at points is not a proof
(an optimizer that treats other gradients differently would pass), as the loss's check
is. The data are checked in the program: a sample that is not finite in the training
dtype gets NaN terms, so the program's one flag (is everything it kept finite?) is false,
and only then does the host look for the sample and name it, with the shared checks'
message (:func:`jaxbackprop._validate.as_samples`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from jaxbackprop import _validate as check
from jaxbackprop.train import TrainHistory

LossFn = Callable[[Any, Any, Any], Any]  # loss(params, x, y) -> scalar
Record = Literal["steps", "epochs", "final"]
Maps = tuple[jax.Array, jax.Array]  # (A, b): A (n,) and b (n,) for one weight, (n, d, d), (n, d)
GROUP = 4  # maps per row of the scan (measured best for the final weight and every weight)


# ---------------------------------------------------------------------------------------
# Affine maps and the scan


SMALL = 8  # d below which a batch of d x d products is written out as a sum (_matmul)


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` for batches of small matrices. Below ``SMALL`` features, as the sum over
    ``k`` of column ``k`` of ``a`` times row ``k`` of ``b``, which XLA fuses into the loop
    around it: XLA's CPU backend runs a batched ``@`` of 4 x 4 to 7 x 7 matrices 2-17x
    slower than that (the final weight at N = 1e5: d = 4 111 ms against 8.7, d = 7 239
    against 112), and the sum is as fast at d = 2, 3 and 8x slower at d = 8 (``python
    experiments/parallel_sgd.py --features 2 3 4 5 6 7 8``)."""
    if a.shape[-1] >= SMALL:
        return a @ b
    return functools.reduce(jnp.add, [a[..., :, k, None] * b[..., None, k, :]
                                      for k in range(a.shape[-1])])


def _apply(a: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """``a w + b``: a number times a number, or a matrix times a vector (batched)."""
    if a.ndim == w.ndim:
        return a * w + b
    return _matmul(a, w[..., None])[..., 0] + b


def compose(first: Maps, then: Maps) -> Maps:
    """The map ``then`` after ``first``: ``(A2, b2) o (A1, b1) = (A2 A1, A2 b1 + b2)``."""
    (a1, b1), (a2, b2) = first, then
    a = a2 * a1 if a1.ndim == b1.ndim else _matmul(a2, a1)
    return a, _apply(a2, b1, b2)


def _identity(maps: Maps) -> Maps:
    """The map ``w -> w`` of the kind of ``maps`` (a batch of them)."""
    a, b = maps
    one = jnp.ones((), a.dtype) if a.ndim == b.ndim else jnp.eye(a.shape[-1], dtype=a.dtype)
    return one, jnp.zeros(b.shape[1:], b.dtype)


def _rows(maps: Maps, group: int) -> Maps:
    """The maps padded with identities to a multiple of ``group``, as rows of ``group``."""
    a, b = maps
    pad = -len(a) % group
    a = jnp.concatenate([a, jnp.repeat(_identity(maps)[0][None], pad, axis=0)])
    b = jnp.concatenate([b, jnp.zeros((pad, *b.shape[1:]), b.dtype)])
    return a.reshape(-1, group, *a.shape[1:]), b.reshape(-1, group, *b.shape[1:])


def _fold(rows: Maps) -> Maps:
    """Each row's maps composed in order, all rows at once: one map per row."""
    a, b = rows
    acc = a[:, 0], b[:, 0]
    for j in range(1, a.shape[1]):
        acc = compose(acc, (a[:, j], b[:, j]))
    return acc


def _level(maps: Maps, group: int) -> Maps:
    """One level of the scan: the rows' maps (:func:`_fold` of :func:`_rows`), computed
    as one array and kept. Kept (``optimization_barrier``), one array: XLA then builds the
    maps from the data inside the one loop that composes them, reading the data once;
    otherwise it writes the maps out first (the final weight at N = 1e6: 2.0 ms, against
    0.6 ms so)."""
    a, b = _fold(_rows(maps, group))
    if a.ndim == b.ndim:
        packed = jax.lax.optimization_barrier(jnp.stack([a, b]))
        return packed[0], packed[1]
    packed = jax.lax.optimization_barrier(jnp.concatenate([a, b[..., None]], axis=-1))
    return packed[..., :-1], packed[..., -1]


def _checked(maps: tuple[ArrayLike, ArrayLike], group: int) -> Maps:
    """``maps`` as arrays, or a ValueError: ``n`` maps of one weight (``A`` and ``b`` of
    shape ``(n,)``) or of ``d`` weights (``(n, d, d)`` and ``(n, d)``), rows of ``group``
    >= 2 (rows of 1 would never shrink)."""
    check.whole_number("group", group, minimum=2)
    a, b = (jnp.asarray(m) for m in maps)
    if not ((a.ndim == 1 and b.shape == a.shape)
            or (a.ndim == 3 and a.shape[1] == a.shape[2] and b.shape == a.shape[:2])):
        raise ValueError(f"maps must be (A, b) of shapes (n,) and (n,), or (n, d, d) and "
                         f"(n, d), got shapes {a.shape} and {b.shape}")
    return a, b


def _start(w0: ArrayLike, maps: Maps) -> jax.Array:
    """``w0`` as an array of the maps' weight shape, or a ValueError."""
    w0 = jnp.asarray(w0)
    if w0.shape != maps[1].shape[1:]:
        raise ValueError(f"w0 must have the maps' weight shape {maps[1].shape[1:]}, got "
                         f"{w0.shape}")
    return w0


def composition(maps: tuple[ArrayLike, ArrayLike], group: int = GROUP) -> Maps:
    """All ``maps`` composed in order into one, the identity when there are none, by
    composing rows of ``group`` maps until one is left."""
    return _composition(_checked(maps, group), group)


def _composition(maps: Maps, group: int) -> Maps:
    """:func:`composition` of checked maps."""
    a, b = maps
    if len(a) == 0:
        return _identity(maps)
    while len(a) > 1:
        a, b = _level((a, b), group)
    return a[0], b[0]


def final_weight(w0: ArrayLike, maps: tuple[ArrayLike, ArrayLike],
                 group: int = GROUP) -> jax.Array:
    """The weight after every map in order, ``w_n = A_n-1(...(A_0 w0 + b_0)...) + b_n-1``
    (``w0`` itself after none): ``w0`` through their :func:`composition`."""
    checked = _checked(maps, group)
    a, b = _composition(checked, group)
    return _apply(a, _start(w0, checked), b)


def weights(w0: ArrayLike, maps: tuple[ArrayLike, ArrayLike], group: int = GROUP) -> jax.Array:
    """The weight *before* each map, ``w_0 = w0``, ``w_t+1 = A_t w_t + b_t`` (``n`` rows).

    A radix-``group`` scan. Split the maps into rows of ``group`` and compose each row
    (:func:`_level`, one pass); the weight at the start of each row comes from this same
    function on the rows' maps (``group`` times fewer). Then every weight in one pass:
    each row replays its maps from its start, ``w[row, j + 1] = A_j w[row, j] + b_j``.
    """
    maps = _checked(maps, group)
    w0 = _start(w0, maps)
    if len(maps[0]) == 0:
        return jnp.zeros((0, *w0.shape), w0.dtype)
    return _weights(w0, maps, group)


def _weights(w0: jax.Array, maps: Maps, group: int) -> jax.Array:
    """:func:`weights` of checked arguments, at least one map."""
    n = len(maps[0])
    a, b = _rows(maps, group)
    starts = w0[None] if len(a) == 1 else _weights(w0, _level(maps, group), group)
    ws = [starts]
    for j in range(group - 1):
        ws.append(_apply(a[:, j], ws[-1], b[:, j]))
    return jnp.stack(ws, axis=1).reshape(-1, *w0.shape)[:n]


# ---------------------------------------------------------------------------------------
# What may be solved this way: a quadratic loss, plain SGD


# The loss's degree in the parameters, read off its jaxpr: a value's degree is 0 when it
# does not depend on them; these primitives keep the largest degree of their operands...
_LINEAR = {"add", "add_any", "sub", "neg", "reshape", "broadcast_in_dim", "squeeze",
           "expand_dims", "transpose", "reduce_sum", "cumsum", "slice", "dynamic_slice",
           "gather", "concatenate", "pad", "rev", "copy", "copy_p", "convert_element_type"}
# ...these add them (a product)...
_PRODUCTS = {"mul", "dot_general"}
# ...and these hold a sub-program, read the same way.
_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
          "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}


def _degrees(jaxpr: Any, degrees: list[int], high: list[str]) -> list[int]:
    """The degree in the parameters of each output of ``jaxpr`` given its inputs' (exact:
    the degree of a polynomial, by its construction); ``high`` gets the primitives that
    raise a degree above 2. A ``ValueError`` naming the first primitive that makes a value
    depending on the parameters other than a polynomial."""
    degree: dict[Any, int] = dict(zip(jaxpr.invars, degrees, strict=True))

    def of(v: Any) -> int:
        return 0 if isinstance(v, jex.core.Literal) else degree.get(v, 0)  # constants: 0

    for eqn in jaxpr.eqns:
        name, ins = eqn.primitive.name, [of(v) for v in eqn.invars]
        if max(ins, default=0) == 0:
            out = [0] * len(eqn.outvars)
        elif name in _CALLS and _CALLS[name] in eqn.params:
            sub = eqn.params[_CALLS[name]]
            out = _degrees(getattr(sub, "jaxpr", sub), ins, high)
        elif name in _LINEAR and (name != "convert_element_type"
                                  or jnp.issubdtype(eqn.params["new_dtype"], jnp.inexact)):
            out = [max(ins)]
        elif name == "select_n" and ins[0] == 0:  # a condition on the data only
            out = [max(ins[1:])]
        elif name in _PRODUCTS:
            out = [sum(ins)]
        elif name == "integer_pow" and eqn.params["y"] >= 0:
            out = [ins[0] * eqn.params["y"]]
        elif name == "square":
            out = [2 * ins[0]]
        elif name == "div" and ins[1] == 0:
            out = [ins[0]]
        else:
            what = ("divides by" if name == "div" else
                    "selects by a condition on" if name == "select_n" else f"applies {name} to")
            raise ValueError(f"method='parallel' needs a loss quadratic in the parameters, and "
                             f"this loss is not a polynomial in them: it {what} the parameters")
        high += [name] if max(out) > 2 and max(ins) <= 2 else []
        degree.update(zip(eqn.outvars, out, strict=True))
    return [of(v) for v in jaxpr.outvars]


def check_quadratic(loss: LossFn, w0: Any, x: Any, y: Any) -> None:
    """Check, from its program alone, that ``loss(w, x, y)`` is a polynomial of degree at
    most 2 in ``w`` (so its Hessian in ``w`` does not depend on ``w``).

    The loss is traced once (``jax.make_jaxpr``) and its program read with each value's
    degree in the parameters: 0 if it does not depend on them; sums, reshapes, sums over
    an axis and a choice on the data keep the largest degree; a product adds degrees,
    ``v ** n`` multiplies by ``n``; division by something that does not depend on the
    parameters keeps it. Any other operation on a value that depends on the parameters
    (``tanh``, ``exp``, ``abs``, ``max``, a division by them...) is not a polynomial.
    Exact for what it accepts: no value of ``w`` can make an accepted loss other than
    quadratic. It may refuse a loss that is quadratic only by cancellation
    (``w**3 - w**3 + w**2``), never accept one that is not.

    Raises:
      ValueError: naming the operation that is not a polynomial, or the loss's degree.
      TypeError: the loss does not return one real number.

    >>> from jaxbackprop import loss
    >>> check_quadratic(loss, 1.0, 2.0, 3.0)  # (w x - y)^2: degree 2
    >>> try:
    ...     check_quadratic(lambda w, x, y: (jnp.tanh(w) * x - y) ** 2, 1.0, 2.0, 3.0)
    ... except ValueError as error:
    ...     print(str(error).split(": ")[-1])
    it applies tanh to the parameters
    """
    def abstract(v: Any) -> Any:
        v = jnp.asarray(v) if not hasattr(v, "dtype") else v
        return jax.ShapeDtypeStruct(jnp.shape(v), v.dtype)

    closed, out = jax.make_jaxpr(loss, return_shape=True)(*jax.tree.map(abstract, (w0, x, y)))
    check.loss_value(out)  # one real number, or a TypeError naming loss
    k = len(jax.tree.leaves(w0))
    high: list[str] = []
    (degree,) = _degrees(closed.jaxpr, [1] * k + [0] * (len(closed.jaxpr.invars) - k), high)
    if degree > 2:
        raise ValueError(f"method='parallel' needs a loss quadratic in the parameters, and "
                         f"this loss is a polynomial of degree {degree} in them ({high[0]} "
                         f"raises it above 2)")


def _quadratic_terms(loss: LossFn, w0: Any, xs: jax.Array, ys: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
    """Per sample, the Hessian ``H_i`` and ``c_i = g_i(0)`` of a quadratic loss in the
    flattened parameters (one vectorised pass each). A sample that is not finite gets NaN
    terms, whatever the loss does with it: every map it enters is then NaN, and so is all
    the training keeps after it (the host then names the sample)."""
    flat, unravel = ravel_pytree(w0)

    def flat_loss(w: jax.Array, x: Any, y: Any) -> jax.Array:
        return loss(unravel(w), x, y)

    zero = jnp.zeros_like(flat)
    h = jax.vmap(jax.hessian(flat_loss), (None, 0, 0))(zero, xs, ys)
    c = jax.vmap(jax.grad(flat_loss), (None, 0, 0))(zero, xs, ys)
    finite = [jnp.isfinite(v).all(tuple(range(1, v.ndim))) if v.ndim > 1 else jnp.isfinite(v)
              for v in (xs, ys)]
    return jnp.where((finite[0] & finite[1])[:, None, None], h, jnp.nan), c


def _random_point(w: jax.Array) -> jax.Array:
    """A fixed pseudo-random point around ``w``, on the scale of ``1 + |w|``."""
    return w + (1 + jnp.abs(w)) * jax.random.normal(jax.random.key(0), w.shape, w.dtype)


_REFUSALS = {
    1: "its state depends on the gradients (momentum, Adam's moments, an average...)",
    2: "its learning rate is not one scalar (the update is not -lr * gradient for one number lr)",
    3: "its update is not -lr * gradient (weight decay, clipping, normalisation...)",
    4: "its learning rate is not finite",
}


@functools.partial(jax.jit, static_argnums=0)
def _probe(optimizer: optax.GradientTransformation, params: Any, state: Any
           ) -> tuple[Any, jax.Array, jax.Array]:
    """One optimizer step probed: ``(next state, lr, verdict)``; verdict 0 is plain SGD
    with rate ``lr``, otherwise a key of ``_REFUSALS``."""
    flat, unravel = ravel_pytree(params)
    k = jnp.arange(flat.size)
    first = jnp.ones_like(flat)  # and signs and powers of two up to 2^20: exact products
    second = (jnp.where(k % 2 == 0, -1.0, 1.0) * 2.0 ** (20 - 3 * (k % 7))).astype(flat.dtype)
    point = _random_point(flat)  # the update must not depend on the parameters
    (u1, s1), (u2, s2) = (optimizer.update(unravel(g), state, unravel(point))
                          for g in (first, second))
    if jax.tree.map(jnp.shape, u1) != jax.tree.map(jnp.shape, params):
        raise ValueError("method='parallel' needs plain SGD: " + _REFUSALS[2])
    u1, u2 = ravel_pytree(u1)[0], ravel_pytree(u2)[0]
    lr = -u1[0]
    tolerance = 4 * jnp.finfo(flat.dtype).eps
    pairs = zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True)
    same_state = jnp.all(jnp.array([jnp.array_equal(a, b) for a, b in pairs] + [True]))
    verdict = jnp.select(
        [~same_state, jnp.abs(u1 + lr * first).max() > tolerance * jnp.abs(lr),
         (jnp.abs(u2 + lr * second) > tolerance * jnp.abs(lr * second)).any(), ~jnp.isfinite(lr)],
        [1, 2, 3, 4], 0)
    return s1, lr, verdict


def _same(tree: Any, other: Any) -> bool:
    leaves, others = jax.tree.leaves(tree), jax.tree.leaves(other)
    return len(leaves) == len(others) and all(map(np.array_equal, leaves, others))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _probe_steps(optimizer: optax.GradientTransformation, steps: int, params: Any, state: Any
                 ) -> tuple[jax.Array, jax.Array]:
    """:func:`_probe` at each of ``steps`` steps: their rates and verdicts."""
    def step(state: Any, _: None) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        state, lr, verdict = _probe(optimizer, params, state)
        return state, (lr, verdict)

    return jax.lax.scan(step, state, None, length=steps)[1]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _rates(optimizer: optax.GradientTransformation, steps: int, params: Any) -> jax.Array:
    """The rate of each of ``steps`` steps, one number for a constant rate. Found while
    the program is traced, from the optimizer and the parameters' shapes only (the probe
    runs at zero), so jit's cache keeps the answer: a later call returns it at once. A
    ValueError, while it is traced, if the optimizer is not plain SGD."""
    with jax.ensure_compile_time_eval():
        zero = jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params)
        state = optimizer.init(zero)
        try:
            next_state, lr, verdict = _probe(optimizer, zero, state)
        except (TypeError, ValueError) as error:
            if str(error).startswith("method='parallel'"):
                raise
            raise ValueError(f"method='parallel' needs plain SGD with a scalar learning rate "
                             f"or a schedule; probing the optimizer failed: {error}") from error
        if verdict or _same(next_state, state):  # a refusal, or the same rate at every step
            _refuse_unless_sgd(verdict)
            _refuse_a_zero_rate(lr)
            return lr
        if steps > check.MAX_EPOCHS:
            raise ValueError(f"method='parallel' with a learning-rate schedule probes each of "
                             f"its epochs x samples = {steps:,} steps, at most "
                             f"{check.MAX_EPOCHS:,} (2**31 - 1)")
        flat = ravel_pytree(zero)[0]
        _check_memory(steps, flat.size, flat.dtype.itemsize, "with a learning-rate schedule",
                      "a constant rate holds one epoch's")
        rates, verdicts = _probe_steps(optimizer, steps, zero, state)
        _refuse_unless_sgd(verdicts)
        _refuse_a_zero_rate(rates)
        return rates


def _check_memory(steps: int, params: int, itemsize: int, why: str, instead: str) -> None:
    """A MemoryError, before anything is built, when the maps of ``steps`` steps do not fit
    in half the memory (per step: its map ``A, b``, its rate, the weight before it, and its
    loss and gradient), saying ``why`` they are held and what would hold fewer."""
    need = steps * (params * params + 3 * params + 2) * itemsize
    if (limit := check.exceeded_memory(need)) is not None:
        raise MemoryError(f"method='parallel' {why} holds every step's affine map: {steps:,} "
                          f"steps (epochs x samples) of {params} parameter(s) take about "
                          f"{need:.3g} bytes, more than half of the {limit:.3g} bytes of "
                          f"memory; {instead}, or use method='sequential'")


def _refuse_unless_sgd(verdicts: jax.Array) -> None:
    """A ValueError naming why the optimizer is not plain SGD, at the first step probed
    that is not."""
    each = np.asarray(verdicts).reshape(-1)
    if (bad := np.flatnonzero(each)).size:
        where = f" (at step {bad[0]})" if bad[0] else ""
        raise ValueError(f"method='parallel' needs plain SGD, and this optimizer is not: "
                         f"{_REFUSALS[int(each[bad[0]])]}{where}")


def _refuse_a_zero_rate(rates: jax.Array) -> None:
    """A ValueError when the rate is 0 at every step: the training would not move (as the
    other trainers find it, after training, when the first update is exactly 0)."""
    if not np.any(np.asarray(rates)):
        raise ValueError(f"method='parallel': the optimizer's learning rate is 0 in the training "
                         f"dtype {np.dtype(rates.dtype)} at every step, so the training would "
                         "not move: its learning_rate underflows to 0 (optax.sgd(1e-46) in "
                         "float32), or its update is always 0; give a larger rate, or train "
                         "in a wider dtype")


def learning_rates(optimizer: optax.GradientTransformation, params: Any, steps: int) -> np.ndarray:
    """The rate ``lr_k`` of each of ``steps`` steps if ``optimizer`` is plain SGD, that is
    ``updates = -lr_k * gradient``: one number, ``shape ()``, when the optimizer's state
    does not change (a constant rate), else one per step (a schedule).

    Raises:
      ValueError: naming why the optimizer is not plain SGD (see the module's docstring),
        or ``steps`` that is not a whole number >= 1.
    """
    optimizer = check.built_optimizer(optimizer)
    return np.asarray(_rates(optimizer, check.whole_number("steps", steps), params))


# ---------------------------------------------------------------------------------------
# The training


@functools.partial(jax.jit, static_argnames=("loss", "epochs", "record"))
def _train(loss: LossFn, w0: Any, rates: jax.Array, xs: jax.Array, ys: jax.Array, *,
           epochs: int, record: Record) -> tuple[Any, TrainHistory, jax.Array]:
    """The training as one program: ``(final params, history, finite)``; ``finite``: every
    loss and weight it kept is. Refuses, while it is traced, a loss that is not quadratic."""
    check_quadratic(loss, w0, xs[0], ys[0])
    history = _history(loss, w0, rates, xs, ys, epochs=epochs, record=record)
    kept = [a for a in (history.losses, history.epoch_loss, *jax.tree.leaves(history.params))
            if a is not None]
    # the largest |value| is finite exactly when every value is (max keeps a NaN); XLA
    # reduces floats faster than the booleans of all(isfinite) (N = 1e6 with every step
    # kept, one noisy measurement: 5.1 against 8.3 ms, minima)
    finite = jnp.all(jnp.array([jnp.isfinite(jnp.max(jnp.abs(a))) for a in kept]))
    return jax.tree.map(lambda p: p[-1], history.params), history, finite


def _history(loss: LossFn, w0: Any, rates: jax.Array, xs: jax.Array, ys: jax.Array, *,
             epochs: int, record: Record) -> TrainHistory:
    """:func:`_train`'s history."""
    h, c = _quadratic_terms(loss, w0, xs, ys)
    flat, unravel = ravel_pytree(w0)
    n, d = len(xs), flat.size
    rates = rates.reshape(-1, n) if rates.ndim else rates.reshape(1, 1)  # (epochs or 1, n or 1)
    if d == 1:  # one weight: the maps are numbers, not 1 x 1 matrices
        w, a, b = flat[0], 1 - rates * h[:, 0, 0], -rates * c[:, 0]
    else:
        w, b = flat, -rates[..., None] * c
        a = jnp.eye(d, dtype=flat.dtype) - rates[..., None, None] * h

    def over_epochs(step: Callable[[jax.Array, Any], tuple[jax.Array, Any]], w: jax.Array,
                    maps: Any) -> tuple[jax.Array, Any]:
        """``step(w, epoch e's maps)`` for each epoch in order (``lax.scan``): ``maps`` has a
        row per epoch, or one row for a constant rate, read at every epoch, not copied."""
        rows = len(jax.tree.leaves(maps)[0])

        def body(carry: tuple[jax.Array, jax.Array], _: None) -> tuple[Any, Any]:
            w, e = carry
            w, out = step(w, jax.tree.map(lambda m: m[e % rows], maps))
            return (w, e + 1), out

        (w, _), out = jax.lax.scan(body, (w, jnp.zeros((), jnp.int32)), None, length=epochs)
        return w, out

    def params(ws: jax.Array) -> Any:  # flat weights with leading axes -> parameter pytrees
        flat_ws = ws.reshape(-1, d)
        return jax.tree.map(lambda p: p.reshape(*ws.shape[:ws.ndim - (d > 1)], *p.shape[1:]),
                            jax.vmap(unravel)(flat_ws))

    if record == "steps":  # every step's map, a constant rate's repeated for each epoch
        a, b = (jnp.broadcast_to(m, (epochs, *m.shape[1:])) for m in (a, b))
        ws = weights(w, (a.reshape(epochs * n, *a.shape[2:]), b.reshape(epochs * n, *b.shape[2:])))
        ws = ws.reshape(epochs, n, *w.shape)
        final = _apply(a[-1, -1], ws[-1, -1], b[-1, -1])
        value_and_grad = jax.vmap(jax.vmap(jax.value_and_grad(loss)), (0, None, None))
        losses, grads = value_and_grad(params(ws), xs, ys)
        after = jnp.concatenate([ws[1:, 0], final[None]])
        return TrainHistory(losses, grads, losses[:, -1], params(after))

    if record == "final":  # each epoch's maps composed into one, the epochs in order
        final, _ = over_epochs(lambda w, m: (_apply(m[0], w, m[1]), None), w,
                               jax.vmap(composition)((a, b)))
        return TrainHistory(None, None, None, params(final[None]))

    # epochs: each epoch's first n - 1 maps composed, then its last step (to see its loss)
    prefix, last = jax.vmap(composition)((a[:, :-1], b[:, :-1])), (a[:, -1], b[:, -1])

    def epoch(w: jax.Array, maps: tuple[Maps, Maps]) -> tuple[jax.Array, tuple[Any, Any]]:
        (pa, pb), (la, lb) = maps
        before = _apply(pa, w, pb)
        w = _apply(la, before, lb)
        return w, (before, w)

    _, (before_last, after) = over_epochs(epoch, w, (prefix, last))
    epoch_loss = jax.vmap(loss, (0, None, None))(params(before_last), xs[-1], ys[-1])
    return TrainHistory(None, None, epoch_loss, params(after))


def train_parallel(loss: LossFn, w0: Any, xs: check.Samples, ys: check.Samples, *,
                   optimizer: optax.GradientTransformation, epochs: int,
                   record: Record = "steps") -> tuple[Any, TrainHistory]:
    r"""Per-sample SGD (the lecture's loop) solved by a parallel scan over its affine steps.

    The same training as the sequential ``train_scan``: for every epoch and every sample
    ``(x_i, y_i)`` in order, ``w <- w - lr_k * grad loss(w, x_i, y_i)``; here each step
    is the affine map ``w <- (I - lr_k H_i) w - lr_k c_i`` and the maps are composed by
    a radix-``GROUP`` scan (see the module's docstring). With every step kept, the weights
    before each step come from the scan (each row of maps replayed from its start) and
    the losses and gradients from one ``jax.vmap``-ed pass over them.

    Only exact: the loss must be quadratic in the parameters and ``optimizer`` plain SGD
    (a constant or scheduled rate); both are checked: the loss exactly, from its program,
    when the training is compiled (:func:`check_quadratic`), the optimizer by a probe
    when its rates are compiled (:func:`_rates`). The data are checked in the program
    (a sample that is not finite makes its flag false), and named on the host.
    The result equals the sequential one up to rounding: the products of many factors
    are rounded in another order (see the module's docstring).

    Args:
      loss: ``loss(params, x, y) -> scalar``, quadratic in ``params`` (a pytree).
      w0: the initial parameters; their floating dtype is the training's.
      xs: the samples' inputs, ``xs[i]`` for sample ``i``.
      ys: their targets.
      optimizer: a built ``optax.GradientTransformation`` that is plain SGD, such as
        ``optax.sgd(0.01)`` or ``optax.sgd(optax.exponential_decay(0.01, 100, 0.5))``.
      epochs: passes over the samples, from 1 to ``2**31 - 1``.
      record: ``"steps"`` (every step's loss and gradient, and each epoch's parameters),
        ``"epochs"`` (each epoch's last loss and parameters) or ``"final"`` (the final
        parameters, as one row).

    Returns:
      ``(params, history)``: the final parameters and a :class:`TrainHistory`, as
      ``train_scan`` returns them (JAX arrays; the fields ``record`` does not keep are
      ``None``).

    Raises:
      ValueError: the loss is not quadratic in the parameters, the optimizer is not
        plain SGD, or its learning rate is not a scalar or a schedule (the message
        says which); or bad input, refused by the trainers' shared checks
        (:mod:`jaxbackprop._validate`), with the same messages (a sample that is not
        finite is found by the program, so it is reported after the checks of the loss
        and the optimizer).
      MemoryError: before anything is built, when the history would not fit in half the
        memory (as ``train_scan``), or the maps of every step that ``record="steps"`` or a
        learning-rate schedule holds would not (a constant rate holds one epoch's maps,
        whatever the number of epochs).
      DivergenceError: a loss or weight became inf or NaN (as ``train_scan``).

    >>> import optax
    >>> from jaxbackprop import lecture, loss
    >>> w, history = train_parallel(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
    ...                             optimizer=optax.sgd(lecture.LEARNING_RATE), epochs=10)
    >>> [f"{l:.4f}" for l in history.epoch_loss[:3]], f"{w * lecture.X_PREDICT:.4f}"
    (['7.3159', '3.9988', '2.1857'], '7.8049')
    """
    check.function("loss", loss, "loss(params, x, y) -> scalar")
    optimizer = check.built_optimizer(optimizer)
    epochs = check.epochs_count(epochs)
    check.choice("record", record, check.RECORDS)
    w0, dtype = check.as_params(w0)
    x, y = check.as_samples(xs, ys, dtype, values=False)  # the program checks the values
    if (injected := check.injected_rate(optimizer.init(w0))) is not None:
        check.checked_rate(injected, dtype)  # the rate an inject_hyperparams optimizer holds
    params = check.parameter_count(w0)
    check.check_size(record, epochs, len(x), 1, params, dtype.itemsize)  # as train_scan
    if record == "steps":
        _check_memory(epochs * len(x), params, dtype.itemsize, "with record='steps'",
                      "record='epochs' or 'final' holds one epoch's")
    rates = _rates(optimizer, epochs * len(x), w0)
    final, history, finite = _train(loss, w0, rates, x, y, epochs=epochs, record=record)
    if not finite:  # a sample that is not finite, or as train_scan: the first inf or NaN loss
        check.as_samples(xs, ys, dtype)  # names the sample
        history, x, y = jax.device_get((history, x, y))
        error = check.divergence(history, x, y, np.max(rates))
        if error is not None:
            raise error
    return final, history


__all__ = ["GROUP", "check_quadratic", "compose", "composition", "final_weight",
           "weights", "learning_rates", "train_parallel"]
